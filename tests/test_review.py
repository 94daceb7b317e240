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
    """乾安县's pool: project 1 is a 就业帮扶车间 (priority 10), 2–4 are not (priority 7)."""
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
    assert {a.priority for a in apps if a.project_name == "肉牛养殖项目1"} == {10.0}
    assert {a.priority for a in apps if a.project_name != "肉牛养殖项目1"} == {7.0}
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


def test_scores_checked_ranked_and_named_after_approval_with_changes(review_env: dict[str, Any]) -> None:
    from prefect.flow_runs import resume_flow_run

    from flows.review import october_review
    from models.db import session_scope
    from models.tables import NamedBase, ObligationInstance

    inbox = review_env["inbox"]
    # First file: project 4 scored by four experts only, one bad score, one conflict of interest,
    # one row whose materials fall outside 2021-06-01 … 2022-05-31, one project not in the pool.
    first = (
        _scores(1, [80, 80, 80, 95, 20])  # trimmed mean 80; priority 10 -> 90
        + _scores(2, [83, 83, 83, 83, 83])  # 83 + 7 = 90: tied with 1, neither commended, 1 applied first
        + _scores(3, [85, 85, 85, 99, 10])  # 85 + 7 = 92: first
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

    result: dict[str, Any] = {}
    runner, tag = run_tagged(lambda: october_review(today=TODAY), result)
    paused = wait_for_pause(tag)
    with session_scope() as session:
        bases = {b.application_id: b for b in session.exec(select(NamedBase)).all()}
    ids = review_env["ids"]
    order = sorted(bases.values(), key=lambda b: b.rank)
    assert [b.application_id for b in order] == [ids[f"肉牛养殖项目{n}"] for n in (3, 1, 2, 4)]
    assert [b.total for b in order] == [92.0, 90.0, 90.0, 77.0]
    assert [b.status for b in order] == ["proposed", "proposed", "ranked", "ranked"]
    # 档次 is a choice among the configured tiers (a select in the UI), not free text.
    from prefect.input.actions import read_flow_run_input

    keyset = paused.state.state_details.run_input_keyset
    schema = read_flow_run_input(keyset["schema"], flow_run_id=paused.id)
    schema = json.loads(schema) if isinstance(schema, str) else schema
    assert schema["properties"][f"tier_{order[0].id}"]["enum"] == ["", "一档", "二档"]
    # The operator names 2 instead of 1 (with a reason), keeps 3 in the first tier and recommends it.
    # The form takes only the decisions per project (命名, 档次, 推荐上级, 理由); the ranking is read-only.
    answer: dict[str, object] = {"approver": "省就业服务局 李四"}
    for b in order:
        answer[f"name_{b.id}"] = b.application_id in (ids["肉牛养殖项目3"], ids["肉牛养殖项目2"])
        answer[f"tier_{b.id}"] = {ids["肉牛养殖项目3"]: "一档", ids["肉牛养殖项目2"]: "二档"}.get(
            b.application_id, ""
        )
        answer[f"recommend_{b.id}"] = b.application_id == ids["肉牛养殖项目3"]
        answer[f"reason_{b.id}"] = (
            "现场核查经营场所与申报不符" if b.application_id == ids["肉牛养殖项目1"] else ""
        )
    resume_flow_run(paused.id, run_input=answer)
    runner.join(timeout=120)
    assert result["naming"]["approval"] == {"named": 2, "not_named": 2, "refused": {}}

    with session_scope() as session:
        bases = {b.application_id: b for b in session.exec(select(NamedBase)).all()}
        review_done = session.exec(
            select(ObligationInstance).where(
                ObligationInstance.obligation_key == "base_review", ObligationInstance.unit_key == QIANAN
            )
        ).one()
    named3, named2, dropped1 = (
        bases[ids["肉牛养殖项目3"]],
        bases[ids["肉牛养殖项目2"]],
        bases[ids["肉牛养殖项目1"]],
    )
    assert (named3.status, named3.tier, named3.amount_yuan, named3.recommended_to) == (
        "named",
        "一档",
        100000,
        SONGYUAN,
    )
    assert (named2.status, named2.tier, named2.amount_yuan, named2.recommended_to) == (
        "named",
        "二档",
        50000,
        None,
    )
    assert (dropped1.status, dropped1.reason, dropped1.decided_by) == (
        "not_named",
        "现场核查经营场所与申报不符",
        "省就业服务局 李四",
    )
    assert review_done.status == "submitted"
    results = [m for m in outbox() if m.kind == "review_result" and m.step in ("named", "recommended")]
    assert sorted((m.unit_key, m.step) for m in results) == [(SONGYUAN, "recommended"), (QIANAN, "named")]
    to_qianan = next(m for m in results if m.unit_key == QIANAN)
    assert (
        "肉牛养殖项目3" in to_qianan.body
        and "肉牛养殖项目2" in to_qianan.body
        and "肉牛养殖项目1" not in to_qianan.body
    )

    # A decided review is not re-ranked, asked again, or told again.
    again = october_review(today=TODAY + dt.timedelta(days=1))
    assert again["namings_open"] == 0 and "naming" not in again
    assert len([m for m in outbox() if m.kind == "review_result"]) == len(results) + 1


def test_an_answer_over_quota_is_refused_and_the_proposals_stay_open(review_env: dict[str, Any]) -> None:
    from config import load_config
    from flows.review import october_review
    from models.review import NamingChoice
    from tasks.review import decide_namings, waiting

    rows = _scores(1, [80] * 5) + _scores(2, [83] * 5) + _scores(3, [85] * 5) + _scores(4, [70] * 5)
    write_xlsx(review_env["inbox"] / "乾安县-专家评分表.xlsx", rows, SCORE_HEADERS)
    assert october_review(today=TODAY, approve=False)["namings_open"] == 2
    cfg = load_config()
    open_rows = waiting(cfg)
    # an unchanged ranking is left alone: the ids a waiting approval form holds stay valid
    assert october_review(today=TODAY + dt.timedelta(days=1), approve=False)["progress"]["ranked"] == 0
    assert [r["id"] for r in waiting(cfg)] == [r["id"] for r in open_rows]
    all_named = [NamingChoice(r["id"], True, "二档", False, "") for r in open_rows]
    outcome = decide_namings(
        cfg, open_rows, all_named, decided_by="李四", decided_at=dt.datetime.now(dt.UTC), flow_run_id=None
    )
    assert outcome["named"] == 0
    assert outcome["refused"] == {QIANAN: "命名 4 个，超过名额 2 个"}
    assert sum(r["name"] for r in waiting(cfg)) == 2


def test_3_6_named_bases_go_up_level_by_level_and_the_province_names_its_own(
    review_env: dict[str, Any],
) -> None:
    """三(三) 应推尽推 of the named, 三(六) 择优命名、逐级推荐, 一 省市县三级: 乾安县 names two bases that meet
    松原市's bar; they enter 松原市's pool with a 包保 owed by 乾安县 (5 working days after Thu 2022-10-20:
    Thu 10-27). 松原市 reviews them and recommends one to the province, which reviews it in its own round
    (provincial_review, 11-01 … 12-15) and names it a provincial base (一档, 500,000 元)."""
    from config import load_config
    from flows.review import october_review
    from flows.services import quarterly_visits
    from models.db import session_scope
    from models.review import NamingChoice
    from models.tables import NamedBase, ObligationInstance, Recommendation
    from tasks.review import _own_pool, decide_namings, waiting

    ids = review_env["ids"]
    inbox = review_env["inbox"]
    rows = _scores(1, [80] * 5) + _scores(2, [83] * 5) + _scores(3, [85] * 5) + _scores(4, [95] * 5)
    write_xlsx(inbox / "乾安县-专家评分表.xlsx", rows, SCORE_HEADERS)
    october_review(today=TODAY, approve=False)
    cfg = load_config()
    open_rows = {r["project"]: r for r in waiting(cfg)}
    # 4: 95 + 7 = 102, first; 3: 92; 1: 80 + 10 = 90; 2: 90, applied later
    assert [r["project"] for r in waiting(cfg)] == [f"肉牛养殖项目{n}" for n in (4, 3, 1, 2)]
    assert open_rows["肉牛养殖项目4"]["upper_bar"] == "不符合：吸纳就业15人，松原市标准20人"
    assert open_rows["肉牛养殖项目3"]["upper_bar"] == "符合"
    # proposed for naming: 4 and 3; only 3 meets the upper bar, so only 3 is proposed upward
    assert [(r["name"], r["recommend"]) for r in open_rows.values()] == [
        (True, False),
        (True, True),
        (False, False),
        (False, False),
    ]

    at = dt.datetime(2022, 10, 20, 1, tzinfo=dt.UTC)  # 09:00 in Changchun

    def decide(choices: list[NamingChoice], rows: list[dict[str, Any]]) -> dict[str, Any]:
        return decide_namings(cfg, rows, choices, decided_by="李四", decided_at=at, flow_run_id=None)

    def choice(project: str, name: bool, tier: str, recommend: bool, reason: str = "") -> NamingChoice:
        return NamingChoice(open_rows[project]["id"], name, tier, recommend, reason)

    # Recommending 4 upward is refused (the whole unit waits); 1 instead of 4, both recommended, applies.
    refused = decide(
        [choice("肉牛养殖项目4", True, "一档", True), choice("肉牛养殖项目3", True, "二档", True)],
        list(open_rows.values()),
    )
    assert refused["refused"] == {QIANAN: "肉牛养殖项目4 不符合：吸纳就业15人，松原市标准20人，不能推荐上级"}
    applied = decide(
        [
            choice("肉牛养殖项目4", False, "", False, "经营场所核查未通过"),
            choice("肉牛养殖项目3", True, "一档", True),
            choice("肉牛养殖项目1", True, "二档", True),
        ],
        list(open_rows.values()),
    )
    assert (applied["named"], applied["refused"]) == (2, {})
    with session_scope() as session:
        recs = session.exec(select(Recommendation)).all()
        assert sorted(
            (r.application_id, r.from_unit, r.to_unit, r.status, r.decided_by) for r in recs
        ) == sorted(
            [
                (ids["肉牛养殖项目3"], QIANAN, SONGYUAN, "approved", "李四"),
                (ids["肉牛养殖项目1"], QIANAN, SONGYUAN, "approved", "李四"),
            ]
        )
    city_unit = next(u for u in cfg.units if u.key == SONGYUAN)
    with session_scope() as session:  # 松原市 now reviews them: they are in its pool
        pool = _own_pool(session, cfg, city_unit, dt.date(2022, 10, 21)).projects
    assert set(pool) == {(credit_code(3), "肉牛养殖项目3"), (credit_code(1), "肉牛养殖项目1")}
    to_qianan = next(
        m for m in outbox() if m.kind == "review_result" and m.unit_key == QIANAN and m.step == "named"
    )
    assert "包保" in to_qianan.body

    quarterly_visits(today=dt.date(2022, 10, 21))
    with session_scope() as session:
        owed = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "leader_assignment")
        ).all()
    assert sorted((i.unit_key, i.due_on) for i in owed) == [(QIANAN, dt.date(2022, 10, 27))] * 2

    # 松原市's review (city criteria): 3 scores 88, 1 scores 86; both named, 3 recommended to the province.
    city_rows = _scores(3, [88] * 5, CITY_CRITERIA) + _scores(1, [86] * 5, CITY_CRITERIA)
    write_xlsx(inbox / "松原市-专家评分表.xlsx", city_rows, SCORE_HEADERS)
    october_review(today=dt.date(2022, 10, 25), approve=False)
    open_rows = {r["project"]: r for r in waiting(cfg)}
    assert {r["route"] for r in open_rows.values()} == {"松原市（市级，名额 3）"}
    assert [r["recommend"] for r in open_rows.values()] == [True, True]  # both meet the province bar
    at = dt.datetime(2022, 10, 25, 1, tzinfo=dt.UTC)
    decide(
        [choice("肉牛养殖项目3", True, "一档", True), choice("肉牛养殖项目1", True, "二档", False)],
        list(open_rows.values()),
    )

    # The province's round: its experts score project 3 on 11-15; it is named a provincial base.
    province_rows = _scores(3, [90] * 5, CITY_CRITERIA)
    write_xlsx(inbox / "吉林省-专家评分表.xlsx", province_rows, SCORE_HEADERS)
    result = october_review(today=dt.date(2022, 11, 15), approve=False)
    assert result["namings_open"] == 1
    [row] = waiting(cfg)
    assert (row["route"], row["upper_bar"], row["recommend"]) == ("吉林省（省级，名额 27）", "—", False)
    open_rows = {row["project"]: row}
    at = dt.datetime(2022, 11, 15, 1, tzinfo=dt.UTC)
    assert decide([choice("肉牛养殖项目3", True, "一档", True)], [row])["refused"] == {
        PROVINCE: "肉牛养殖项目3 已是省级，没有上级可推荐"
    }
    assert decide([choice("肉牛养殖项目3", True, "一档", False)], [row])["named"] == 1
    with session_scope() as session:
        named = session.exec(select(NamedBase).where(NamedBase.status == "named")).all()
        provincial = session.exec(
            select(ObligationInstance).where(ObligationInstance.obligation_key == "provincial_review")
        ).one()
    assert sorted((b.unit_key, b.application_id, b.tier, b.amount_yuan) for b in named) == sorted(
        [
            (QIANAN, ids["肉牛养殖项目3"], "一档", 100000),
            (QIANAN, ids["肉牛养殖项目1"], "二档", 50000),
            (SONGYUAN, ids["肉牛养殖项目3"], "一档", 300000),
            (SONGYUAN, ids["肉牛养殖项目1"], "二档", 200000),
            (PROVINCE, ids["肉牛养殖项目3"], "一档", 500000),
        ]
    )
    assert (provincial.unit_key, provincial.status) == (PROVINCE, "submitted")


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
    07-04 乾安县's project is admitted to its pool (应收尽收); 10-20 its experts score it, the province
    approves the naming in the paused run, and, meeting 松原市's bar, it is recommended (应推尽推) into
    松原市's pool; 乾安县 owes 包保 by 10-27 (5 working days) and a visit in Q4 (enough of the quarter is
    left); an operator names the leader on 10-24; the visit of 11-08 arrives 11-10; on 12-31 the base
    counts for 乾安县 and, with its counties, 松原市 (1 of a plan of 3), and 三送 reached it in both pools."""
    from openpyxl import load_workbook
    from prefect.flow_runs import resume_flow_run

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

    write_xlsx(home / "inbox" / "base_review" / "乾安县-专家评分表.xlsx", _scores(1, [85] * 5), SCORE_HEADERS)
    result: dict[str, Any] = {}
    runner, tag = run_tagged(lambda: october_review(today=dt.date(2022, 10, 20)), result)
    paused = wait_for_pause(tag)
    from tasks.review import waiting

    [row] = waiting(load_config())
    assert (row["name"], row["tier"], row["upper_bar"], row["recommend"]) == (True, "一档", "符合", True)
    answer = {"approver": "省就业服务局 李四"} | {
        f"{field}_{row['id']}": row[field] for field in ("name", "tier", "recommend")
    }
    resume_flow_run(paused.id, run_input=answer | {f"reason_{row['id']}": ""})
    runner.join(timeout=120)
    assert result["naming"]["approval"]["named"] == 1
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
