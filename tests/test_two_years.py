"""The pool and the bases outlive the year (三(三) 培育库, 三(四) 包保, 三(六) 逐级推荐, 一 the plan), and each
level decides its own (三(六) "各地要在10月底前完成市县两级基地评审认定"): two years walked on SQLite and
PostgreSQL. 2021 is the province's own list, imported; 2022 is the campaign file; 2023 comes from
`campaign new-year`.

Small hierarchy (tests/service_data.py): 吉林省; 松原市 with 乾安县 and 长岭县; 长春市 with 农安县;
梅河口市. Quotas for this walk: the province names 2, each city-level unit 1, each county 2; the plan is
11 (province 2, city 3, county 6; 松原市 6, 长春市 3, 梅河口市 2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from models.registry import REGISTRY_COLUMNS
from tests.helpers import edit_yaml, outbox
from tests.pool_data import application, credit_code, write_xlsx
from tests.service_data import PROVINCE, QIANAN, SONGYUAN, use_small_hierarchy

REGISTRY_HEADERS = [c.header for c in REGISTRY_COLUMNS]
NAMING_HEADERS = ["项目名称", "统一社会信用代码", "档次", "命名文件文号", "推荐上级", "不推荐理由"]
SCORE_HEADERS = ["专家姓名", "专家工作单位", "项目名称", "统一社会信用代码", "评分项", "得分"]
SCORE_HEADERS += ["申报材料起始日期", "申报材料截止日期"]
PROVINCE_CRITERIA = ["带动创业就业", "经营效益", "运营管理", "品牌与示范"]


def _listed(n: int, **registry: str) -> dict[str, str]:
    """A 乾安县 project as the province's 2021 list has it."""
    row = {k: v for k, v in application(n).items() if k != "申报层级"}
    return (
        row
        | {"入库年度": "2021", "命名层级": "无", "命名年度": "", "档次": "", "命名文件文号": ""}
        | registry
    )


def _named(n: int, tier: str, recommend: bool, kept: str = "") -> dict[str, str]:
    return {
        "项目名称": f"肉牛养殖项目{n}",
        "统一社会信用代码": credit_code(n),
        "档次": tier,
        "命名文件文号": "乾人社发〔2022〕8号",
        "推荐上级": "是" if recommend else "否",
        "不推荐理由": kept,
    }


def _owed(obligation: str) -> set[tuple[str, str, str, dt.date]]:
    from models.db import session_scope
    from models.tables import ObligationInstance

    with session_scope() as session:
        rows = session.exec(select(ObligationInstance).where(ObligationInstance.obligation_key == obligation))
        return {(i.unit_key, i.subject_label, i.period, i.due_on) for i in rows}


@pytest.mark.also_postgres
def test_two_years_the_registry_carries_and_each_level_names_its_own(
    env: dict[str, Any], prefect_harness: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from config import load_config
    from flows.assessment import annual_assessment
    from flows.cli import main
    from flows.pool import pool_intake
    from flows.review import october_review
    from flows.services import quarterly_visits
    from models.db import session_scope
    from models.review import NamingChoice
    from models.tables import NamedBase, ObligationInstance, PoolApplication
    from tasks.assessment import counted_bases
    from tasks.pool import load_pool
    from tasks.review import decide_namings, waiting

    home, config = Path(env["home"]), Path(env["config_dir"])
    use_small_hierarchy(config)

    def quotas(data: dict[str, Any]) -> None:
        data["review"]["naming_quota"] = {"province": 2, "city": 1, "county": 2}
        data["review"]["unit_quota"] = {}
        data["quotas"].update(
            total=11,
            by_level={"province": 2, "city": 3, "county": 6},
            by_city={SONGYUAN: 6, "220100": 3, "220581": 2},
        )

    edit_yaml(config / "campaigns" / "2022.yaml", quotas)

    # ---- 2021, imported: the province's own list (a first year's start).
    # 1: in 松原市's pool (乾安县 recommended it), a 2021 county base of 乾安县.
    # 2: in the provincial pool (recommended 乾安县 → 松原市 → 吉林省), a 2021 city base of 松原市.
    # 3: in 乾安县's pool, not named. 6: a 2021 county base still in 乾安县's pool.
    # 5: a row that contradicts itself (named above its pool): refused.
    listed = [
        _listed(
            1,
            所在培育库="市级",
            命名层级="县级",
            命名年度="2021",
            档次="一档",
            命名文件文号="乾人社发〔2021〕5号",
        ),
        _listed(
            2,
            所在培育库="省级",
            命名层级="市级",
            命名年度="2021",
            档次="一档",
            命名文件文号="松人社发〔2021〕9号",
        ),
        _listed(3, 所在培育库="县级"),
        _listed(
            5,
            所在培育库="县级",
            命名层级="市级",
            命名年度="2021",
            档次="一档",
            命名文件文号="松人社发〔2021〕9号",
        ),
        _listed(
            6,
            所在培育库="县级",
            命名层级="县级",
            命名年度="2021",
            档次="二档",
            命名文件文号="乾人社发〔2021〕5号",
        ),
    ]
    registry = write_xlsx(home / "吉林省-往年培育库及基地名录.xlsx", listed, REGISTRY_HEADERS)
    assert main(["import-registry", str(registry), "--today", "2022-06-21"]) == 1  # one row is wrong
    out = capsys.readouterr().out
    assert "已导入 5 行：新登记项目 4，更新 0，命名基地 3，逐级推荐记录 3，有误 1" in out
    assert "第 5 行 命名层级：高于所在培育库：命名基地应在本级或更高的培育库中（市级）" in out
    assert "2022 年度沿用往年登记：培育库项目 4 个，命名基地 3 个，逐级推荐 3 项" in out
    with session_scope() as session:
        ids = {a.project_name: a.id for a in session.exec(select(PoolApplication)).all()}
        pool, _ = load_pool(session, 2022)
    assert sorted(pool[["project_name", "level", "pool_unit"]].values.tolist()) == [
        ["肉牛养殖项目1", "city", SONGYUAN],
        ["肉牛养殖项目2", "province", PROVINCE],
        ["肉牛养殖项目3", "county", QIANAN],
        ["肉牛养殖项目6", "county", QIANAN],
    ]

    # ---- 2022. 2021's recommendations owe 包保 (5 working days from the notice, Tue 06-28) and the
    # Q3 visit, by whoever recommended them: 乾安县 for 1 and 2, 松原市 for 2.
    quarterly_visits(today=dt.date(2022, 7, 1))
    assert _owed("leader_visits") >= {
        (QIANAN, "肉牛养殖项目1", "2022-Q3", dt.date(2022, 9, 30)),
        (QIANAN, "肉牛养殖项目2", "2022-Q3", dt.date(2022, 9, 30)),
        (SONGYUAN, "肉牛养殖项目2", "2022-Q3", dt.date(2022, 9, 30)),
    }
    assert {(u, p, due) for u, p, _, due in _owed("leader_assignment")} == {
        (QIANAN, "肉牛养殖项目1", dt.date(2022, 6, 28)),
        (QIANAN, "肉牛养殖项目2", dt.date(2022, 6, 28)),
        (SONGYUAN, "肉牛养殖项目2", dt.date(2022, 6, 28)),
    }

    # A 2022 application joins the same pool; 1 files again with figures below the county's bar and stays
    # in the pool (admitted in 2021: 应收尽收 once). 乾安县's pool holds 1–4 and 6 (a project recommended
    # up stays in the pool it came from), 松原市's 1 and 2, the province's 2.
    write_xlsx(
        home / "inbox" / "pool_intake" / "乾安县-培育库申报表.xlsx",
        [application(4), application(1, 带动创业人数="5")],
    )
    assert pool_intake(today=dt.date(2022, 7, 4))["pools"] == {"province": 1, "city": 2, "county": 5}
    with session_scope() as session:
        ids = {a.project_name: a.id for a in session.exec(select(PoolApplication)).all()}
        one = session.get(PoolApplication, ids["肉牛养殖项目1"])
    assert one is not None and (one.year, one.admitted, one.entrepreneurs_driven) == (2021, True, 5)
    assert one.admission_note.startswith("已于 2021 年入库，仍在培育库（本次报送未达")

    # A later list (imported 08-15) may not overwrite this year's application (4), and what it adds owes
    # from the day it is imported: 7, recommended to 松原市 in 2021, owes its 包保 by Mon 08-22.
    later = write_xlsx(
        home / "吉林省-往年培育库及基地名录（补充）.xlsx",
        [_listed(4, 所在培育库="县级"), _listed(7, 所在培育库="市级")],
        REGISTRY_HEADERS,
    )
    assert main(["import-registry", str(later), "--today", "2022-08-15"]) == 1
    assert "第 2 行 项目名称：该项目已在 2022 年度申报，往年名录不覆盖本年度的申报" in capsys.readouterr().out
    quarterly_visits(today=dt.date(2022, 8, 16))
    assert (QIANAN, "肉牛养殖项目7", dt.date(2022, 8, 22)) in {
        (u, p, due) for u, p, _, due in _owed("leader_assignment")
    }

    # Before the provincial round, `campaign check` says what the plan can really reach: the province
    # adds to 2022's count only by naming a city base of an earlier year (松原市 has one: 2).
    assert main(["check", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "建设计划 11 个，按命名名额最多可达 10 个（县级 6、市级 3、省级 1）" in out
    assert "登记库中可供省级评审的往年市级基地 1 个" in out
    assert "梅河口市：计划 2 个，最多可达 1 个（市县两级命名名额 1 个，往年市级基地 0 个可供省级命名）" in out
    assert "松原市：计划" not in out  # 1 + 2 + 2 + 1 from the province: 6 of 6

    # 乾安县 files its naming list by 10-31: 3 (in its pool since 2021) goes up; 4 meets 松原市's bar and
    # is kept back, with the reason 松原市 is told.
    naming = home / "inbox" / "naming_list"
    naming.mkdir(parents=True, exist_ok=True)
    # 6 was named a county base in 2021: bases outlive the year, it is not named again — but it may be
    # sent up this year (推荐上级 是), outside the quota.
    write_xlsx(
        naming / "乾安县-基地命名名单（草）.xlsx", [_named(6, "一档", False, "暂不推荐")], NAMING_HEADERS
    )
    [draft] = october_review(today=dt.date(2022, 10, 27), approve=False)["intake"]["naming_list"]
    assert [e["reason"] for e in draft["errors"]] == [
        "已于 2021 年由乾安县命名为县级基地，同一层级不重复命名（基地跨年度延续；如需推荐上级，“推荐上级”填“是”）"
    ]
    write_xlsx(
        naming / "乾安县-基地命名名单.xlsx",
        [
            _named(3, "一档", True),
            _named(4, "二档", False, "项目负责人申请本年度暂不推荐"),
            _named(6, "一档", True),
        ],
        NAMING_HEADERS,
    )
    state = october_review(today=dt.date(2022, 10, 28), approve=False, return_state=True)
    [to_city] = [m for m in outbox() if m.kind == "review_result" and m.unit_key == SONGYUAN]
    assert "肉牛养殖项目3" in to_city.body
    assert "肉牛养殖项目4（乾安县兴农合作社4）：项目负责人申请本年度暂不推荐" in to_city.body
    assert "肉牛养殖项目6（乾安县兴农合作社6）：往年已命名的本级基地，本年度推荐" in to_city.body
    with get_client(sync_client=True) as client:  # and the province sees it in the overview
        [overview] = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["campaign-overview"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    assert "| 乾安县 | 肉牛养殖项目4 | 松原市 | 项目负责人申请本年度暂不推荐 |" in str(overview.data)
    # 10-31 is met by the naming list: on 11-01 松原市 and 长岭县 (no list) are overdue, 乾安县 is not.
    october_review(today=dt.date(2022, 11, 1), approve=False)
    overdue = {m.unit_key for m in outbox() if m.kind == "overdue" and ":base_review:" in m.dedupe_key}
    assert QIANAN not in overdue and {SONGYUAN, "220722"} <= overdue
    with session_scope() as session:
        done = session.exec(
            select(ObligationInstance).where(
                ObligationInstance.obligation_key == "base_review", ObligationInstance.unit_key == QIANAN
            )
        ).one()
    assert (done.status, done.progress_note) == ("submitted", "已报命名名单：命名 2 个")

    # The province's round names 2 (松原市's city base of 2021) a provincial base of 2022.
    scores = [
        {
            "专家姓名": expert,
            "专家工作单位": "吉林农业大学",
            "项目名称": "肉牛养殖项目2",
            "统一社会信用代码": credit_code(2),
            "评分项": criterion,
            "得分": "90",
            "申报材料起始日期": "2021-06-01",
            "申报材料截止日期": "2022-05-31",
        }
        for expert in ("甲", "乙", "丙", "丁", "戊")
        for criterion in PROVINCE_CRITERIA
    ]
    write_xlsx(home / "inbox" / "base_review" / "吉林省-专家评分表.xlsx", scores, SCORE_HEADERS)
    october_review(today=dt.date(2022, 11, 15), approve=False)
    cfg = load_config()
    [row] = waiting(cfg)
    assert (row["project"], row["route"]) == ("肉牛养殖项目2", "吉林省（省级，名额 2）")
    at = dt.datetime(2022, 11, 15, 1, tzinfo=dt.UTC)
    choice = NamingChoice(row["id"], True, "一档", False, "")
    decided = decide_namings(cfg, [row], [choice], decided_by="李四", decided_at=at, flow_run_id=None)
    assert decided["named"] == 1

    # The assessment counts 2022's new bases, once each at their highest level: 3 and 4 (乾安县's county
    # bases) and 2 (provincial); 2021's (1 and 2's city naming) are last year's.
    annual_assessment(today=dt.date(2022, 12, 31))
    with session_scope() as session:
        counted = counted_bases(session, cfg)
        named = session.exec(select(NamedBase).where(NamedBase.status == "named")).all()
    assert sorted(zip(counted["application_id"], counted["level"], strict=True)) == sorted(
        [
            (ids["肉牛养殖项目2"], "province"),
            (ids["肉牛养殖项目3"], "county"),
            (ids["肉牛养殖项目4"], "county"),
        ]
    )
    assert sorted((b.year, b.level, b.application_id, b.source) for b in named) == sorted(
        [
            (2021, "county", ids["肉牛养殖项目1"], "imported"),
            (2021, "city", ids["肉牛养殖项目2"], "imported"),
            (2021, "county", ids["肉牛养殖项目6"], "imported"),
            (2022, "county", ids["肉牛养殖项目3"], "naming_list"),
            (2022, "county", ids["肉牛养殖项目4"], "naming_list"),
            (2022, "province", ids["肉牛养殖项目2"], "review"),
        ]
    )

    # ---- 2023 from `campaign new-year`: nothing to copy, the registry carries: 6 pool projects (1–4, 6,
    # 7), 6 bases (2021: 1, 2, 6; 2022: 3, 4 and 2 provincial), 6 recommendations (2021's three, 7's,
    # and 2022's 3 and 6 → 松原市), no city base left for the province.
    assert main(["new-year", "2023"]) == 0
    out = capsys.readouterr().out
    assert (
        "2023 年度沿用往年登记：培育库项目 6 个，命名基地 6 个，逐级推荐 6 项（推荐单位继续包保、每季度走访）；"
        "可供省级评审的往年市级基地 0 个"
    ) in out
    with session_scope() as session:
        pool, _ = load_pool(session, 2023)
    assert len(pool) == 6
