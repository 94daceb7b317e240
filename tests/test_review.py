"""三(六) The October review: scores checked per row and as a whole, ranking, quota cut, tie-break by
commendation, the naming approval paused and resumed with changes, recommendation upward."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sqlmodel import select

from config.schema import Level
from tests.helpers import edit_yaml, outbox, run_tagged, wait_for_pause
from tests.pool_data import application, credit_code, write_xlsx
from tests.service_data import PROVINCE, QIANAN, SONGYUAN, use_small_hierarchy

SCORE_HEADERS = [
    "专家姓名",
    "专家工作单位",
    "项目名称",
    "统一社会信用代码",
    "评分项",
    "得分",
    "申报材料起始日期",
    "申报材料截止日期",
]
COUNTY_CRITERIA = ["带动创业就业", "经营效益", "运营管理", "示范带动"]
CITY_CRITERIA = ["带动创业就业", "经营效益", "运营管理", "品牌与示范"]  # the province scores on these too
EXPERTS = ["甲", "乙", "丙", "丁", "戊"]
TODAY = dt.date(2022, 10, 20)


def _review_rules() -> Any:
    from config import load_config

    return load_config().campaign.review


# ------------------------------------------------------------------ rules, without Prefect
def test_expert_scores_weight_criteria_and_drop_highest_and_lowest(
    config_dir: Path, monkeypatch: Any
) -> None:
    from models.review import expert_scores

    monkeypatch.setenv("CAMPAIGN_CONFIG_DIR", str(config_dir))
    review = _review_rules()
    weights = {c.name: c.weight for c in review.criteria[Level.county]}
    rows = []
    per_expert = {"甲": 90, "乙": 80, "丙": 70, "丁": 100, "戊": 10}
    for expert, base in per_expert.items():
        for i, criterion in enumerate(COUNTY_CRITERIA):
            rows.append(
                {"application_id": 1, "expert_name": expert, "criterion": criterion, "score": base - i}
            )
    got = expert_scores(pd.DataFrame(rows), review, Level.county)
    totals = {
        e: sum((b - i) * weights[c] for i, c in enumerate(COUNTY_CRITERIA)) for e, b in per_expert.items()
    }
    kept = sorted(totals.values())[1:-1]  # 100 and 10 dropped
    assert got[1] == round(sum(kept) / 3, 2)


def test_3_2_commendation_breaks_ties_ranked_by_total_and_cut_at_the_quota(
    config_dir: Path, monkeypatch: Any
) -> None:
    """三(二) "同等条件下，要优先支持…受到表彰的": commendation adds no points; among equal totals the
    commended project goes first, then the earlier application."""
    from models.review import rank

    monkeypatch.setenv("CAMPAIGN_CONFIG_DIR", str(config_dir))
    review = _review_rules()
    projects = pd.DataFrame(
        {
            "application_id": [1, 2, 3, 4],
            "expert_score": [80.0, 83.0, 85.0, 70.0],
            "priority": [10.0, 7.0, 7.0, 7.0],
            "commended": [False, True, False, False],
        }
    )
    ranked = rank(projects, review, Level.county, quota=2)
    assert ranked["application_id"].tolist() == [3, 2, 1, 4]  # 1 and 2 tie at 90: 2 is commended
    assert ranked["total"].tolist() == [92.0, 90.0, 90.0, 77.0]  # and gets no point for it
    nobody = rank(projects.assign(commended=False), review, Level.county, quota=2)
    assert nobody["application_id"].tolist() == [3, 1, 2, 4]  # no commendation: the earlier application
    assert ranked["proposed"].tolist() == [True, True, False, False]
    assert ranked["tier"].tolist() == ["一档", "二档", "", ""]  # county: 一档 up to half of the named
    assert ranked["amount_yuan"].tolist() == [100000.0, 50000.0, 0.0, 0.0]


def test_incomplete_scoring_names_each_missing_expert_and_criterion(
    config_dir: Path, monkeypatch: Any
) -> None:
    from models.review import incomplete

    monkeypatch.setenv("CAMPAIGN_CONFIG_DIR", str(config_dir))
    review = _review_rules()
    rows = [
        {"application_id": a, "expert_name": e, "criterion": c, "score": 80}
        for a, experts in ((1, EXPERTS), (2, EXPERTS[:4]))
        for e in experts
        for c in COUNTY_CRITERIA
        if not (a == 1 and e == "乙" and c == "经营效益")
    ]
    reasons = incomplete(pd.DataFrame(rows), review, Level.county)
    assert reasons.to_dict("records") == [
        {"application_id": 1, "reason": "专家乙未对“经营效益”评分"},
        {"application_id": 2, "reason": "评分专家 4 位，应为 5 位"},
    ]


# ------------------------------------------------------------------ the flow
def _scores(
    project: int, totals: list[float], criteria: list[str] = COUNTY_CRITERIA, **overrides: Any
) -> list[dict[str, Any]]:
    """Five experts' rows for one 乾安县 project; each expert gives every criterion the same score."""
    return [
        {
            "专家姓名": expert,
            "专家工作单位": "吉林农业大学",
            "项目名称": f"肉牛养殖项目{project}",
            "统一社会信用代码": credit_code(project),
            "评分项": criterion,
            "得分": str(total),
            "申报材料起始日期": "2021-06-01",
            "申报材料截止日期": "2022-05-31",
        }
        | overrides
        for expert, total in zip(EXPERTS, totals, strict=True)
        for criterion in criteria
    ]


def _pool(env: dict[str, Any]) -> dict[str, int]:
    """乾安县's pool: project 1 is a 就业帮扶车间 (priority 12), 2–4 are not (priority 9: 脱贫人口 3, 肉牛 2,
    一村一品 3, one direction 1; weights of the 2022 file)."""
    from config import load_config
    from models.clock import moment
    from models.db import session_scope
    from models.tables import PoolApplication
    from tasks.pool import take_in_workbook
    from tasks.sync import sync_hierarchy

    cfg = load_config()
    with session_scope() as session:
        sync_hierarchy(session, cfg)
    folder = Path(env["home"]) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        application(1, **{"是否就业帮扶车间": "是"}),
        application(2),
        application(3),
        application(4, 吸纳就业人数="15"),  # 乾安县's filed bar asks no jobs, 松原市's (the city's) 20
    ]
    take_in_workbook(
        cfg, write_xlsx(folder / "乾安县-培育库申报表.xlsx", rows), moment(dt.date(2022, 7, 1), cfg.campaign)
    )
    with session_scope() as session:
        apps = session.exec(select(PoolApplication)).all()
    assert {a.priority for a in apps if a.project_name == "肉牛养殖项目1"} == {12.0}
    assert {a.priority for a in apps if a.project_name != "肉牛养殖项目1"} == {9.0}
    return {a.project_name: a.id for a in apps}  # type: ignore[misc]


@pytest.fixture
def review_env(env: dict[str, Any], prefect_harness: None) -> dict[str, Any]:
    use_small_hierarchy(Path(env["config_dir"]))
    # these scenarios are written for a county quota of 2 (the 2022 file's 示意 quota is 1)
    edit_yaml(
        Path(env["config_dir"]) / "campaigns" / "2022.yaml",
        lambda d: d["review"]["naming_quota"].update(county=2),
    )
    env["ids"] = _pool(env)
    env["inbox"] = Path(env["home"]) / "inbox" / "base_review"
    env["inbox"].mkdir(parents=True, exist_ok=True)
    return env


NAMING_HEADERS = ["项目名称", "统一社会信用代码", "档次", "命名文件文号", "推荐上级", "不推荐理由"]


def _named(
    project: int, tier: str, recommend: bool, kept: str = "", decree: str = "乾人社发〔2022〕8号"
) -> dict[str, str]:
    """One row of a naming list (基地命名名单) for 乾安县's project `project`."""
    return {
        "项目名称": f"肉牛养殖项目{project}",
        "统一社会信用代码": credit_code(project),
        "档次": tier,
        "命名文件文号": decree,
        "推荐上级": "是" if recommend else "否",
        "不推荐理由": kept,
    }


def _namings(env: dict[str, Any], file_name: str, rows: list[dict[str, str]]) -> Path:
    folder = Path(env["home"]) / "inbox" / "naming_list"
    folder.mkdir(parents=True, exist_ok=True)
    return write_xlsx(folder / file_name, rows, NAMING_HEADERS)


def _review_obligation(unit_key: str, key: str = "base_review") -> Any:
    from models.db import session_scope
    from models.tables import ObligationInstance

    with session_scope() as session:
        return session.exec(
            select(ObligationInstance).where(
                ObligationInstance.obligation_key == key, ObligationInstance.unit_key == unit_key
            )
        ).one()


def test_3_6_scores_are_checked_and_ranked_for_the_county_which_names_its_own_bases(
    review_env: dict[str, Any],
) -> None:
    """三(六) "各地要在10月底前完成市县两级基地评审认定": 乾安县's expert scores are checked row by row and
    as a whole, and ranked for it as a reference; nothing waits for the province and the scores do not
    meet 10-31. Its naming list does: 3 (一档) goes up to 松原市; 2 (二档) meets 松原市's bar but is kept
    back, which needs a reason (三(三) 应推尽推), and 松原市 is told it."""
    from flows.review import october_review
    from models.db import session_scope
    from models.tables import NamedBase, Recommendation

    inbox = review_env["inbox"]
    # First file: project 4 scored by four experts only, one bad score, one conflict of interest,
    # one row whose materials fall outside 2021-06-01 … 2022-05-31, one project not in the pool.
    first = (
        _scores(1, [80, 80, 80, 95, 20])  # trimmed mean 80; priority 12 -> 92
        + _scores(2, [83, 83, 83, 83, 83])  # 83 + 9 = 92: tied with 1, neither commended, 1 applied first
        + _scores(3, [85, 85, 85, 99, 10])  # 85 + 9 = 94: first
        + _scores(4, [70, 70, 70, 70, 70])[:16]  # 戊 missing: incomplete
    )
    # Rows 0, 4 and 8 are 甲's, 乙's and 丙's 带动创业就业 for project 1; each is refused for a reason.
    first[0]["得分"] = "120"
    first[4] = first[4] | {"专家工作单位": "乾安县兴农合作社1"}  # 乙 works for the applicant: must recuse
    first[8]["申报材料起始日期"] = "2021-05-01"
    first.append(_scores(9, [80] * 5)[0])
    write_xlsx(inbox / "乾安县-专家评分表.xlsx", first, SCORE_HEADERS)

    result = october_review(today=TODAY, approve=False)
    summary = result["intake"]["base_review"][0]
    assert summary["rejected"] == 4
    reasons = {e["reason"] for e in summary["errors"]}
    assert "得分应在 0–100 之间" in reasons
    assert "专家为本人所在单位的申报项目评分，应回避" in reasons
    assert "申报材料期间须在 2021-06-01 至 2022-05-31 之内" in reasons
    assert any("培育库中没有该项目" in r for r in reasons)
    assert result["progress"] == {"complete": 0, "incomplete": 1, "ranked": 0, "told": 1}
    told = [m for m in outbox() if m.kind == "review_result" and m.unit_key == QIANAN]
    assert len(told) == 1
    for reason in (
        "专家甲未对“带动创业就业”评分",
        "专家乙未对“带动创业就业”评分",
        "评分专家 4 位，应为 5 位",
    ):
        assert reason in told[0].body
    # the same state again sends nothing
    assert october_review(today=TODAY, approve=False)["progress"]["told"] == 0

    # The corrections: the three refused rows re-scored, and project 4's fifth expert.
    fix = [_scores(1, [80] * 5)[i] for i in (0, 4, 8)] + _scores(4, [70] * 5)[16:]
    write_xlsx(inbox / "乾安县-专家评分表（补报）.xlsx", fix, SCORE_HEADERS)
    result = october_review(today=TODAY)  # an operator's run: nothing of a county's waits for approval
    assert result["namings_open"] == 0 and "naming" not in result
    with session_scope() as session:
        bases = {b.application_id: b for b in session.exec(select(NamedBase)).all()}
    ids = review_env["ids"]
    order = sorted(bases.values(), key=lambda b: b.rank or 0)
    assert [b.application_id for b in order] == [ids[f"肉牛养殖项目{n}"] for n in (3, 1, 2, 4)]
    assert [b.total for b in order] == [94.0, 92.0, 92.0, 79.0]
    assert [(b.status, b.tier) for b in order] == [("ranked", "")] * 4  # a reference, not a decision
    assert _review_obligation(QIANAN).status == "open"  # 10-31 is met by the naming, not the scores

    # The naming list: 2 is kept back without a reason first: that row is refused, 3 is recorded.
    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(3, "一档", True), _named(2, "二档", False)])
    result = october_review(today=TODAY + dt.timedelta(days=1), approve=False)
    [listed] = result["intake"]["naming_list"]
    assert (listed["named"], listed["recommended"], listed["rejected"]) == (1, 1, 1)
    assert [e["reason"] for e in listed["errors"]] == [
        "符合松原市入库条件，应推尽推：不推荐上级须填写不推荐理由（将告知松原市）"
    ]
    _namings(
        review_env,
        "乾安县-基地命名名单（更正）.xlsx",
        [_named(3, "一档", True), _named(2, "二档", False, "企业主动申请暂缓进入市级培育库")],
    )
    october_review(today=TODAY + dt.timedelta(days=2), approve=False)
    with session_scope() as session:
        bases = {b.application_id: b for b in session.exec(select(NamedBase)).all()}
        recs = session.exec(select(Recommendation)).all()
    named3, named2, ranked1 = (
        bases[ids["肉牛养殖项目3"]],
        bases[ids["肉牛养殖项目2"]],
        bases[ids["肉牛养殖项目1"]],
    )
    assert (named3.status, named3.tier, named3.amount_yuan, named3.recommended_to, named3.decree_no) == (
        "named",
        "一档",
        100000,
        SONGYUAN,
        "乾人社发〔2022〕8号",
    )
    assert (named2.status, named2.tier, named2.amount_yuan, named2.recommended_to, named2.kept_reason) == (
        "named",
        "二档",
        50000,
        None,
        "企业主动申请暂缓进入市级培育库",
    )
    assert (ranked1.status, named3.decided_by) == ("not_named", "乾安县（命名名单）")
    assert [(r.application_id, r.from_unit, r.to_unit, r.status) for r in recs] == [
        (ids["肉牛养殖项目3"], QIANAN, SONGYUAN, "approved")
    ]
    assert _review_obligation(QIANAN).status == "submitted"
    to_city = [m for m in outbox() if m.kind == "review_result" and m.unit_key == SONGYUAN]
    latest = to_city[-1].body
    assert "肉牛养殖项目3" in latest and "乾人社发〔2022〕8号" in latest
    assert "肉牛养殖项目2" in latest and "企业主动申请暂缓进入市级培育库" in latest
    # A decided review is not re-ranked or told again.
    again = october_review(today=TODAY + dt.timedelta(days=3))
    assert again["progress"]["ranked"] == 0 and again["namings_open"] == 0
    assert len([m for m in outbox() if m.kind == "review_result" and m.unit_key == SONGYUAN]) == len(to_city)


def test_3_6_a_naming_list_over_the_quota_is_refused_whole(review_env: dict[str, Any]) -> None:
    """A county's quota (2 in these scenarios): a list of 3 is refused whole, its sender told why (which
    two to keep is the county's own decision), and nothing of it is recorded."""
    from flows.review import october_review
    from models.db import session_scope
    from models.tables import NamedBase

    rows = [_named(1, "一档", True), _named(2, "二档", True), _named(3, "二档", True)]
    _namings(review_env, "乾安县-基地命名名单.xlsx", rows)
    result = october_review(today=TODAY, approve=False)
    [refused] = result["intake"]["naming_list"]
    assert refused["refused"] == "命名 3 个，超过本级命名名额 2 个：请按名额报送完整的命名名单"
    with session_scope() as session:
        assert session.exec(select(NamedBase)).all() == []
    assert _review_obligation(QIANAN).status == "open"
    [told] = [m for m in outbox() if m.kind == "rejection" and m.unit_key == QIANAN]
    assert "超过本级命名名额 2 个" in told.body


def test_3_6_named_bases_go_up_level_by_level_and_the_province_names_its_own(
    review_env: dict[str, Any],
) -> None:
    """三(三) 应推尽推 of the named, 三(六) 择优命名、逐级推荐, 一 省市县三级: 乾安县 names two bases that meet
    松原市's bar and recommends them; they enter 松原市's pool with a 包保 owed by 乾安县 (5 working days
    after Thu 2022-10-20: Thu 10-27). 乾安县 cannot recommend project 4 (short of 松原市's bar). 松原市
    names both in its own list and recommends 3 to the province, whose operator names it a provincial
    base (一档, 500,000 元) in the paused run of its own round (provincial_review, 11-01 … 12-15)."""

    from prefect.flow_runs import resume_flow_run
    from prefect.input.actions import read_flow_run_input

    from config import load_config
    from flows.review import october_review
    from flows.services import quarterly_visits
    from models.db import session_scope
    from models.tables import NamedBase, ObligationInstance, Recommendation
    from tasks.review import _own_pool

    ids = review_env["ids"]
    inbox = review_env["inbox"]
    cfg = load_config()
    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(4, "一档", True), _named(3, "二档", True)])
    result = october_review(today=TODAY, approve=False)
    [listed] = result["intake"]["naming_list"]
    assert [e["reason"] for e in listed["errors"]] == [
        "不符合松原市入库条件（吸纳就业15人，松原市标准20人），不能推荐上级"
    ]
    _namings(
        review_env,
        "乾安县-基地命名名单（更正）.xlsx",
        [_named(3, "一档", True), _named(1, "二档", True)],
    )
    october_review(today=TODAY, approve=False)
    with session_scope() as session:
        recs = session.exec(select(Recommendation)).all()
        assert sorted((r.application_id, r.from_unit, r.to_unit, r.status) for r in recs) == sorted(
            [
                (ids["肉牛养殖项目3"], QIANAN, SONGYUAN, "approved"),
                (ids["肉牛养殖项目1"], QIANAN, SONGYUAN, "approved"),
            ]
        )
    city_unit = next(u for u in cfg.units if u.key == SONGYUAN)
    with session_scope() as session:  # 松原市 now reviews them: they are in its pool
        pool = _own_pool(session, cfg, city_unit, dt.date(2022, 10, 21)).projects
    assert set(pool) == {(credit_code(3), "肉牛养殖项目3"), (credit_code(1), "肉牛养殖项目1")}

    quarterly_visits(today=dt.date(2022, 10, 21))
    with session_scope() as session:
        owed = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "leader_assignment")
        ).all()
    assert sorted((i.unit_key, i.due_on) for i in owed) == [(QIANAN, dt.date(2022, 10, 27))] * 2

    # 松原市 names both (its own 评审认定, city tiers) and recommends 3 to the province; 1 meets the
    # province's bar too, so keeping it back takes a reason, which the province sees.
    _namings(
        review_env,
        "松原市-基地命名名单.xlsx",
        [
            _named(3, "一档", True, decree="松人社发〔2022〕21号"),
            _named(1, "二档", False, "市级重点培育一年后再推荐", decree="松人社发〔2022〕21号"),
        ],
    )
    october_review(today=dt.date(2022, 10, 25), approve=False)
    assert _review_obligation(SONGYUAN).status == "submitted"
    to_province = [m for m in outbox() if m.kind == "review_result" and m.unit_key == PROVINCE][-1]
    assert "肉牛养殖项目3" in to_province.body and "市级重点培育一年后再推荐" in to_province.body

    # The province's round: its experts score project 3 on 11-15; its operator names it in the paused run.
    write_xlsx(inbox / "吉林省-专家评分表.xlsx", _scores(3, [90] * 5, CITY_CRITERIA), SCORE_HEADERS)
    outcome: dict[str, Any] = {}
    runner, tag = run_tagged(lambda: october_review(today=dt.date(2022, 11, 15)), outcome)
    paused = wait_for_pause(tag)
    with session_scope() as session:
        [proposed] = session.exec(select(NamedBase).where(NamedBase.unit_key == PROVINCE)).all()
    assert (proposed.status, proposed.tier, proposed.total) == ("proposed", "一档", 99.0)  # 90 + 9
    keyset = paused.state.state_details.run_input_keyset
    schema = read_flow_run_input(keyset["schema"], flow_run_id=paused.id)
    schema = json.loads(schema) if isinstance(schema, str) else schema
    assert schema["properties"][f"tier_{proposed.id}"]["enum"] == ["", "一档", "二档"]
    assert f"recommend_{proposed.id}" not in schema["properties"]  # the province names; nothing goes up
    answer = {"approver": "省就业服务局 李四", f"name_{proposed.id}": True, f"tier_{proposed.id}": "一档"}
    resume_flow_run(paused.id, run_input=answer | {f"reason_{proposed.id}": ""})
    runner.join(timeout=120)
    assert outcome["naming"]["approval"] == {"named": 1, "not_named": 0, "refused": {}}
    with session_scope() as session:
        named = session.exec(select(NamedBase).where(NamedBase.status == "named")).all()
    assert sorted((b.unit_key, b.application_id, b.tier, b.amount_yuan) for b in named) == sorted(
        [
            (QIANAN, ids["肉牛养殖项目3"], "一档", 100000),
            (QIANAN, ids["肉牛养殖项目1"], "二档", 50000),
            (SONGYUAN, ids["肉牛养殖项目3"], "一档", 300000),
            (SONGYUAN, ids["肉牛养殖项目1"], "二档", 200000),
            (PROVINCE, ids["肉牛养殖项目3"], "一档", 500000),
        ]
    )
    assert _review_obligation(PROVINCE, "provincial_review").status == "submitted"
    # 松原市, which recommended it, hears that it was named a provincial base.
    [told] = [m for m in outbox() if m.kind == "review_result" and m.step == "named"]
    assert told.unit_key == SONGYUAN and "肉牛养殖项目3" in told.body and "省级" in told.body


def test_2_assistance_workshops_are_counted_per_unit(review_env: dict[str, Any]) -> None:
    """一 "以基地为载体建设就业帮扶车间": 乾安县's pool holds one workshop (project 1), shown in the 三送
    service summary per unit; 松原市's own pool holds none."""
    from config import load_config
    from models.db import session_scope
    from tasks.services import service_summary

    with session_scope() as session:
        table = service_summary(session, load_config(), dt.date(2022, 8, 1)).set_index("代码")
    assert table.loc[QIANAN, "就业帮扶车间（个）"] == 1
    assert table.loc[SONGYUAN, "就业帮扶车间（个）"] == 0


def test_3_6_the_staged_review_plan_is_filed_reminded_and_escalated(review_env: dict[str, Any]) -> None:
    """三(六) "制订分阶段评审方案": owed by every city and county; kickoff 09-01, due Friday 09-30 (示意
    dates). 乾安县 files its plan on 09-20 and gets a receipt. On 10-08, the make-up Saturday after 国庆
    and the first working day after the due date, 松原市 (no plan) is told it is overdue and the province
    hears of it; 乾安县 hears nothing more."""
    from flows.review import october_review

    plans = Path(review_env["home"]) / "inbox" / "review_plan"
    plans.mkdir(parents=True, exist_ok=True)
    (plans / "乾安县-评审方案.pdf").write_bytes(b"%PDF-1.4 staged review plan")
    october_review(today=dt.date(2022, 9, 20), approve=False)
    assert [m.unit_key for m in outbox() if m.kind == "receipt"] == [QIANAN]

    october_review(today=dt.date(2022, 10, 8), approve=False)
    first = {(m.unit_key, m.kind) for m in outbox() if m.step == "E1" and ":review_plan:" in m.dedupe_key}
    assert (SONGYUAN, "overdue") in first and (PROVINCE, "escalation") in first
    assert not [u for u, _ in first if u == QIANAN]
    province = next(
        m for m in outbox() if m.step == "E1" and m.kind == "escalation" and m.unit_key == PROVINCE
    )
    assert "松原市" in province.body and "乾安县" not in province.body


def test_3_3_to_4_3_year_walk_a_county_project_from_admission_to_both_units_assessment(
    env: dict[str, Any], prefect_harness: None
) -> None:
    """The path end to end, as the notice has it, with the 2022 file's quotas (a county names 1):
    07-04 乾安县's project is admitted to its pool (应收尽收); 10-20 乾安县 files its naming list (its own
    评审认定) and, meeting 松原市's bar, the base is recommended (应推尽推) into 松原市's pool; 乾安县 owes 包保 by 10-27 (5 working days) and a visit in Q4 (enough of the quarter is
    left); an operator names the leader on 10-24; the visit of 11-08 arrives 11-10; on 12-31 the base
    counts for 乾安县 and, with its counties, 松原市 (1 of a plan of 3), and 三送 reached it in both pools."""
    from openpyxl import load_workbook

    from config import load_config
    from flows.assessment import annual_assessment
    from flows.pool import pool_intake
    from flows.review import october_review
    from flows.services import quarterly_visits
    from models.db import session_scope
    from models.tables import ObligationInstance, Recommendation
    from tasks.pool import load_pool
    from tasks.visits import assign_leader
    from tests.helpers import city_row
    from tests.service_data import VISIT_HEADERS, visit, write_sheet

    home = Path(env["home"])
    use_small_hierarchy(Path(env["config_dir"]))
    write_xlsx(home / "inbox" / "pool_intake" / "乾安县-培育库申报表.xlsx", [application(1)])
    assert pool_intake(today=dt.date(2022, 7, 4))["pools"] == {"province": 0, "city": 0, "county": 1}

    # 乾安县's own 评审认定: it names the project (its quota is 1) and, meeting 松原市's bar, recommends it.
    _namings(env, "乾安县-基地命名名单.xlsx", [_named(1, "一档", True)])
    result = october_review(today=dt.date(2022, 10, 20))
    assert result["intake"]["naming_list"][0]["named"] == 1 and "naming" not in result
    with session_scope() as session:
        [rec] = session.exec(select(Recommendation)).all()
        apps, _ = load_pool(session, 2022)
    assert (rec.from_unit, rec.to_unit, rec.status) == (QIANAN, SONGYUAN, "approved")
    assert apps[["level", "pool_unit"]].values.tolist() == [["city", SONGYUAN]]  # now in 松原市's pool

    quarterly_visits(today=dt.date(2022, 10, 21))
    assign_leader(
        load_config(),
        application_id=rec.application_id,
        leader_name="王县长",
        leader_title="县长",
        assigned_by="省就业服务局 李四",
        today=dt.date(2022, 10, 24),
    )
    quarterly_visits(today=dt.date(2022, 10, 24))
    write_sheet(
        home / "inbox" / "leader_visits" / "乾安县-走访记录表.xlsx", VISIT_HEADERS, [visit(1, "2022-11-08")]
    )
    quarterly_visits(today=dt.date(2022, 11, 10))
    with session_scope() as session:
        owed = {
            (i.obligation_key, i.period): (i.unit_key, i.due_on, i.status)
            for i in session.exec(select(ObligationInstance)).all()
            if i.obligation_key in ("leader_assignment", "leader_visits") and i.subject
        }
    assert owed == {
        ("leader_assignment", "2022"): (QIANAN, dt.date(2022, 10, 27), "submitted"),
        ("leader_visits", "2022-Q4"): (QIANAN, dt.date(2022, 12, 31), "submitted"),
    }

    published = annual_assessment(today=dt.date(2022, 12, 31))["progress"]["assessment"]
    book = load_workbook(published["workbook"])

    quantity, services = city_row(book, "数量指标", "松原市"), city_row(book, "服务基地", "松原市")
    assert (quantity["命名基地数"], quantity["命名基地数：所属县（市、区）"], quantity["年度建设计划"]) == (
        1,
        1,
        3,
    )
    assert quantity["完成情况"] == "1 / 计划 3"
    assert (services["入库项目"], services["已服务入库项目"]) == (2, 2)  # in 乾安县's pool and 松原市's


# ------------------------------------------------------------------ naming lists as a careless bureau sends them
# What a hostile review found (each failed before its fix). 乾安县's pool holds 肉牛养殖项目1–4 (4 is short of
# 松原市's bar: 15 jobs of 20), its quota here is 2.


def _bases() -> dict[int, tuple[str, str, str | None]]:
    from models.db import session_scope
    from models.tables import NamedBase

    with session_scope() as session:
        rows = session.exec(select(NamedBase).where(NamedBase.unit_key == QIANAN)).all()
        return {b.application_id: (b.status, b.tier, b.recommended_to) for b in rows}


def _recommendations() -> dict[tuple[int, str], str]:
    from models.db import session_scope
    from models.tables import Recommendation

    with session_scope() as session:
        return {(r.application_id, r.to_unit): r.status for r in session.exec(select(Recommendation)).all()}


def test_a_list_naming_only_projects_outside_the_pool_goes_back_with_the_reason(
    review_env: dict[str, Any],
) -> None:
    """Every row unknown: the rows go back ("培育库中没有该项目"); the run does not fail."""
    from flows.review import october_review

    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(9, "一档", True)])
    result = october_review(today=TODAY, approve=False)
    [listed] = result["intake"]["naming_list"]
    assert listed["rejected"] == 1 and "培育库中没有该项目" in listed["errors"][0]["reason"]
    assert _review_obligation(QIANAN).status == "open"


def test_a_corrected_list_with_a_typo_changes_nothing_it_does_not_name_rightly(
    review_env: dict[str, Any],
) -> None:
    """[3 一档 是, 1 二档 是], then the correction [3 一档 是, 1 三档 是]: row 1 goes back (no 三档), and base 1
    stays named and recommended until a list without errors says otherwise; the message says so."""
    from flows.review import october_review

    ids = review_env["ids"]
    one, three = ids["肉牛养殖项目1"], ids["肉牛养殖项目3"]
    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(3, "一档", True), _named(1, "二档", True)])
    october_review(today=TODAY, approve=False)
    _namings(
        review_env, "乾安县-基地命名名单（更正）.xlsx", [_named(3, "一档", True), _named(1, "三档", True)]
    )
    october_review(today=TODAY + dt.timedelta(days=1), approve=False)
    assert _bases()[one] == ("named", "二档", SONGYUAN) and _bases()[three] == ("named", "一档", SONGYUAN)
    assert _recommendations()[(one, SONGYUAN)] == "approved"
    [result] = [m for m in outbox() if m.kind == "intake_result" and "（更正）" in m.subject]
    assert "其余原已登记的命名和推荐保持不变" in result.body


def test_a_list_over_the_quota_is_refused_whole_even_with_a_bad_row(review_env: dict[str, Any]) -> None:
    """Three rows against a quota of 2, one with an unknown tier: refused whole, nothing recorded."""
    from flows.review import october_review

    rows = [_named(1, "一档", True), _named(2, "二档", False, "暂缓"), _named(3, "九档", True)]
    _namings(review_env, "乾安县-基地命名名单.xlsx", rows)
    [refused] = october_review(today=TODAY, approve=False)["intake"]["naming_list"]
    assert refused["refused"] == "命名 3 个，超过本级命名名额 2 个：请按名额报送完整的命名名单"
    assert _bases() == {}


def test_a_withdrawn_recommendation_owes_no_visits_and_a_named_one_above_stands(
    review_env: dict[str, Any],
) -> None:
    """乾安县 recommends 3 and 1 (包保 due 10-27, Q4 visits owed); 松原市 names 3 and recommends it to the
    province. 乾安县's corrected list names 3 only: 1's recommendation is withdrawn and its open 包保
    and visit go, with the reminders queued for them; 3's stands (松原市 named it). The province's
    scores of a project no longer in its pool are not ranked."""
    from flows.review import october_review
    from flows.services import quarterly_visits
    from models.db import session_scope
    from models.tables import NamedBase, ObligationInstance

    ids = review_env["ids"]
    one, three = ids["肉牛养殖项目1"], ids["肉牛养殖项目3"]
    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(3, "一档", True), _named(1, "二档", True)])
    october_review(today=TODAY, approve=False)
    quarterly_visits(today=dt.date(2022, 10, 21))

    def owed(project: int) -> set[str]:
        with session_scope() as session:
            rows = session.exec(
                select(ObligationInstance).where(ObligationInstance.subject == f"app:{project}")
            ).all()
            return {i.obligation_key for i in rows}

    assert owed(one) == {"leader_assignment", "leader_visits"}
    city = [_named(3, "一档", True, decree="松人社发〔2022〕21号"), _named(1, "二档", False, "再培育一年")]
    _namings(review_env, "松原市-基地命名名单.xlsx", city)
    october_review(today=dt.date(2022, 10, 21), approve=False)

    _namings(review_env, "乾安县-基地命名名单（更正）.xlsx", [_named(3, "一档", True)])
    october_review(today=dt.date(2022, 10, 24), approve=False)
    quarterly_visits(today=dt.date(2022, 10, 24))
    recs = _recommendations()
    assert recs[(three, SONGYUAN)] == "approved"  # 松原市 had named it: the withdrawal does not reach it
    assert recs[(one, SONGYUAN)] == "approved"  # 松原市 named 1 too
    [told] = [m for m in outbox() if m.kind == "intake_result" and "（更正）" in m.subject]
    assert "肉牛养殖项目1：松原市已将其命名为本级基地，推荐不撤回" in told.body
    # A project 松原市 did not name is withdrawn for real: 2, recommended and then left off.
    _namings(
        review_env, "乾安县-基地命名名单（再更正）.xlsx", [_named(3, "一档", True), _named(2, "二档", True)]
    )
    october_review(today=dt.date(2022, 10, 25), approve=False)
    quarterly_visits(today=dt.date(2022, 10, 25))
    two = ids["肉牛养殖项目2"]
    assert owed(two) == {"leader_assignment", "leader_visits"}
    _namings(review_env, "乾安县-基地命名名单（终版）.xlsx", [_named(3, "一档", True)])
    october_review(today=dt.date(2022, 10, 26), approve=False)
    quarterly_visits(today=dt.date(2022, 10, 26))
    assert _recommendations()[(two, SONGYUAN)] == "excluded"
    assert owed(two) == set()
    assert not [
        m
        for m in outbox()
        if m.status == "pending" and m.obligation_id is None and "肉牛养殖项目2" in m.subject
    ]

    # The province scores 2 (no longer in any pool above 乾安县's): nothing of it is ranked.
    write_xlsx(
        review_env["inbox"] / "吉林省-专家评分表.xlsx", _scores(2, [90] * 5, CITY_CRITERIA), SCORE_HEADERS
    )
    october_review(today=dt.date(2022, 11, 15), approve=False)
    with session_scope() as session:
        assert (
            session.exec(
                select(NamedBase).where(NamedBase.application_id == two, NamedBase.unit_key != QIANAN)
            ).all()
            == []
        )


def test_3_3_a_reason_is_kept_only_where_the_upper_bar_is_met(review_env: dict[str, Any]) -> None:
    """4 is short of 松原市's bar: a 不推荐理由 written for it is not "符合上级入库条件而未推荐"."""
    from flows.review import october_review

    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(4, "一档", False, "不够条件")])
    [listed] = october_review(today=TODAY, approve=False)["intake"]["naming_list"]
    assert (listed["named"], listed["kept"]) == (1, 0)
    [to_city] = [m for m in outbox() if m.kind == "review_result" and m.unit_key == SONGYUAN]
    assert "不够条件" not in to_city.body


def test_3_6_a_unit_with_nothing_to_name_is_recorded_by_an_operator(review_env: dict[str, Any]) -> None:
    """长岭县 has nothing to name: an operator records its word (登记线下报送), and the review's runs keep it
    met — they do not reopen it for want of a naming list."""
    # the form's task (flows/submission.py builds its choices from the config at import: not here,
    # where the hierarchy is this test's)
    from config import load_config
    from flows.review import october_review
    from tasks.intake import record_operator_submission

    october_review(today=dt.date(2022, 9, 1), approve=False)
    with_record = record_operator_submission(
        load_config(),
        obligation_key="base_review",
        unit_key="220722",
        submitted_on=dt.date(2022, 10, 19),
        submitted_by="省就业服务局 李四",
        note="本年度无命名基地",
        file_path=None,
    )
    assert with_record
    october_review(today=dt.date(2022, 10, 20), approve=False)
    assert _review_obligation("220722").status == "submitted"


def test_a_base_the_city_withdraws_after_the_provinces_scores_is_not_proposed(
    review_env: dict[str, Any],
) -> None:
    """松原市 recommends 3 to the province, whose experts score it; 松原市's corrected list keeps 3 at city
    level only: 3 leaves the provincial pool, and the province's ranking of it goes (nothing waits)."""
    from config import load_config
    from flows.review import october_review
    from tasks.review import waiting

    _namings(review_env, "乾安县-基地命名名单.xlsx", [_named(3, "一档", True), _named(1, "二档", True)])
    october_review(today=TODAY, approve=False)
    city = [_named(3, "一档", True, decree="松人社发〔2022〕21号"), _named(1, "二档", False, "再培育一年")]
    _namings(review_env, "松原市-基地命名名单.xlsx", city)
    october_review(today=dt.date(2022, 10, 25), approve=False)
    write_xlsx(
        review_env["inbox"] / "吉林省-专家评分表.xlsx", _scores(3, [90] * 5, CITY_CRITERIA), SCORE_HEADERS
    )
    october_review(today=dt.date(2022, 11, 15), approve=False)
    assert [r["project"] for r in waiting(load_config())] == ["肉牛养殖项目3"]
    corrected = [
        _named(3, "一档", False, "市级继续培育", decree="松人社发〔2022〕21号"),
        _named(1, "二档", False, "再培育一年", decree="松人社发〔2022〕21号"),
    ]
    _namings(review_env, "松原市-基地命名名单（更正）.xlsx", corrected)
    october_review(today=dt.date(2022, 11, 16), approve=False)
    assert waiting(load_config()) == []
