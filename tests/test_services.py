"""The services' rules without Prefect, and their sheets taken in with bad rows: refused per row with the
reason, good rows kept, the sender told, a rerun changing nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlmodel import select

from config import load_config
from models.clock import moment
from models.deadlines import calendar_for
from models.planning import OpenInstance, decide
from models.services import (
    checkpoint_status,
    diverted,
    first_owed_periods,
    fund_rates,
    subsidies_out_of_step,
    training_progress,
)
from models.tables import FundRecord, ObligationInstance, PoolApplication, TrainingRecord, VisitRecord
from tests.helpers import edit_yaml, outbox
from tests.pool_data import application, credit_code, write_xlsx
from tests.service_data import (
    CHANGCHUN,
    FUND_HEADERS,
    QIANAN,
    SONGYUAN,
    TRAINING_HEADERS,
    VISIT_HEADERS,
    approve_recommendations,
    fund,
    training,
    use_small_hierarchy,
    visit,
    write_sheet,
)

D = dt.date


# ------------------------------------------------------------------ rules, no Prefect
def _ledger(rows: list[dict[str, object]]) -> pd.DataFrame:
    base = {"source": "省级专项资金", "fund_year": 2022, "document_no": "文1", "purpose": "基地建设补助"}
    base |= {"arrived": 0.0, "arrived_on": None, "executed": 0.0, "executed_on": None}
    return pd.DataFrame([base | r for r in rows])


def test_fund_rates_count_amounts_from_their_dates() -> None:
    funds = _ledger(
        [
            {
                "unit_key": "A",
                "allocated": 100.0,
                "allocated_on": D(2022, 6, 1),
                "arrived": 100.0,
                "arrived_on": D(2022, 7, 1),
                "executed": 60.0,
                "executed_on": D(2022, 9, 1),
            },
            {"unit_key": "A", "allocated": 100.0, "allocated_on": D(2022, 10, 15)},  # not yet owed on 09-30
            {
                "unit_key": "B",
                "allocated": 50.0,
                "allocated_on": D(2022, 6, 1),
                "arrived": 25.0,
                "arrived_on": D(2022, 6, 20),
            },
        ]
    )
    on_cp1 = fund_rates(funds, D(2022, 9, 30))
    assert on_cp1.loc["A", "arrival_rate"] == 1.0 and on_cp1.loc["A", "execution_rate"] == 0.6
    assert on_cp1.loc["B", "arrival_rate"] == 0.5 and on_cp1.loc["B", "execution_rate"] == 0.0
    year_end = fund_rates(funds, D(2022, 12, 31))
    assert year_end.loc["A", "arrival_rate"] == 0.5 and year_end.loc["A", "execution_rate"] == 0.3

    rules = load_config().campaign.services.funds  # type: ignore[union-attr]
    status = checkpoint_status(funds, rules, ["A", "B", "C"], rules.targets[D(2022, 9, 30)], D(2022, 9, 30))
    assert status["met"].to_dict() == {"A": True, "B": False, "C": False}
    assert status.loc["B", "note"] == "专项资金到位率 50.0%（应达 100%），执行率 0.0%（应达 60%）"
    assert status.loc["C", "note"] == "未报送资金台账"


def test_3_5_the_three_guarantees_count_the_special_funds_only() -> None:
    """三(五) "把专项资金使用好、管理好…确保专项资金到位率 100%；确保资金执行率 100%": the rates are the
    special funds'. The 2022 file (示意) counts 省级专项资金 and 因素法下达资金 as special, not the cities'
    and counties' own 市级资金、县级资金. Year-end targets: 100 % and 100 %.

    A: 省级专项资金 100 arrived and spent, 市级资金 100 neither: special 100 % / 100 %, met (over every
    source it would be 50 % / 50 %). B: 因素法下达资金 100, 50 arrived and spent: 50 % / 50 %, not met, 县级资金
    beside it fully spent changes nothing. C: only 县级资金, nothing arrived: no special funds to bring to
    100 %, met. D: no ledger at all: not reported."""
    rules = load_config().campaign.services.funds  # type: ignore[union-attr]
    line = {"allocated": 100.0, "allocated_on": D(2022, 6, 1)}
    spent = {"arrived": 100.0, "arrived_on": D(2022, 7, 1), "executed": 100.0, "executed_on": D(2022, 9, 1)}
    half = {"arrived": 50.0, "arrived_on": D(2022, 7, 1), "executed": 50.0, "executed_on": D(2022, 9, 1)}
    funds = _ledger(
        [
            {"unit_key": "A", **line, **spent},
            {"unit_key": "A", **line, "source": "市级资金", "document_no": "文2"},
            {"unit_key": "B", **line, **half, "source": "因素法下达资金"},
            {"unit_key": "B", **line, **spent, "source": "县级资金", "document_no": "文3"},
            {"unit_key": "C", **line, "source": "县级资金"},
        ]
    )
    year_end = D(2022, 12, 31)
    status = checkpoint_status(funds, rules, ["A", "B", "C", "D"], rules.targets[year_end], year_end)
    assert status["met"].to_dict() == {"A": True, "B": False, "C": True, "D": False}
    assert status.loc["A", "note"] == "专项资金到位率 100.0%（应达 100%），执行率 100.0%（应达 100%）"
    assert status.loc["B", "note"] == "专项资金到位率 50.0%（应达 100%），执行率 50.0%（应达 100%）"
    assert status.loc["C", "note"] == "资金台账中没有已下达的专项资金（到位率、执行率只计专项资金）"
    assert status.loc["D", "note"] == "未报送资金台账"


def test_diversion_is_provincial_money_spent_outside_the_list() -> None:
    rules = load_config().campaign.services.funds  # type: ignore[union-attr]
    funds = _ledger(
        [
            {
                "unit_key": "A",
                "allocated": 10.0,
                "allocated_on": D(2022, 6, 1),
                "purpose": "办公楼装修",
                "executed": 1.0,
            },
            {
                "unit_key": "A",
                "allocated": 10.0,
                "allocated_on": D(2022, 6, 1),
                "purpose": "办公楼装修",
            },  # not spent
            {
                "unit_key": "A",
                "allocated": 10.0,
                "allocated_on": D(2022, 6, 1),
                "purpose": "办公楼装修",
                "source": "市级资金",
                "executed": 1.0,
            },  # the city's own money: its business
            {"unit_key": "A", "allocated": 10.0, "allocated_on": D(2022, 6, 1), "executed": 1.0},  # eligible
        ]
    )
    assert diverted(funds, rules).tolist() == [True, False, False, False]


def test_base_subsidies_out_of_step() -> None:
    rules = load_config().campaign.services.funds  # type: ignore[union-attr]
    line = {"fund_year": 2021, "allocated": 10.0, "allocated_on": D(2022, 6, 1), "executed": 10.0}
    funds = _ledger(
        [
            {**line, "unit_key": "late", "executed_on": D(2022, 7, 1)},
            {**line, "unit_key": "late", "source": "市级资金", "executed_on": D(2022, 9, 15)},
            {**line, "unit_key": "together", "executed_on": D(2022, 7, 1)},
            {**line, "unit_key": "together", "source": "市级资金", "executed_on": D(2022, 7, 20)},
            {**line, "unit_key": "missing", "executed_on": D(2022, 7, 1)},  # the city never paid
            {**line, "unit_key": "recent", "executed_on": D(2022, 9, 20)},  # the city still has time
            {**line, "unit_key": "other-year", "fund_year": 2022, "executed_on": D(2022, 7, 1)},
        ]
    )
    flagged = subsidies_out_of_step(funds, rules, D(2022, 10, 1)).set_index("unit_key")
    assert sorted(flagged.index) == ["late", "missing"]
    assert (
        "相差 76 天" in flagged.loc["late", "detail"]
        and "市级资金首次发放 未发放" in flagged.loc["missing", "detail"]
    )


def test_a_project_recommended_late_in_a_quarter_is_first_visited_the_next() -> None:
    cfg = load_config()
    visits, cal = cfg.campaign.obligation("leader_visits"), calendar_for(cfg.campaign)
    early = first_owed_periods(cfg.campaign, visits, D(2022, 7, 5), cal, 10)
    late = first_owed_periods(cfg.campaign, visits, D(2022, 9, 22), cal, 10)  # 6 working days left in Q3
    assert [p.label for p in early] == ["2022-Q3", "2022-Q4"]
    assert [p.label for p in late] == ["2022-Q4"]


def test_3_4_trainings_count_the_calendar_year_per_unit_and_kind() -> None:
    cfg = load_config()
    trainings = pd.DataFrame(
        {
            "unit_key": ["220700", "220700", "220700", "220723", "220723"],
            "kind": ["农技人员培训", "农技人员培训", "创业者培训", "创业者培训", "农技人员培训"],
            "held_on": [D(2022, 4, 12), D(2022, 8, 1), D(2022, 6, 25), D(2022, 9, 1), D(2021, 11, 3)],
        }
    )
    progress = training_progress(trainings, cfg.campaign, cfg.campaign.services)  # type: ignore[arg-type]
    # 三(四) "每年…市级不少于2次": the calendar year counts, so 松原市's April training (before the notice
    # of 06-21) and its August one make 2 of 2; 乾安县's of 2021 counts for nothing in 2022.
    assert sorted(map(tuple, progress.to_numpy().tolist())) == [
        ("agri_tech_training", "220700", "2022", 2),
        ("entrepreneur_training", "220723", "2022-H2", 1),  # 06-25 falls before H2: not counted for it
    ]


def test_one_message_per_unit_lists_its_projects_and_a_supervisor_hears_once() -> None:
    cfg = load_config()
    units = {u.key: u for u in cfg.units}
    ob = cfg.campaign.obligation("leader_visits")
    q3 = dict(kickoff_on=D(2022, 7, 1), due_on=D(2022, 9, 30))
    open_ = [
        OpenInstance(1, "220723", "2022-Q3", None, subject="app:1", subject_label="项目甲", **q3),
        OpenInstance(2, "220723", "2022-Q3", None, subject="app:2", subject_label="项目乙", **q3),
        OpenInstance(3, "220722", "2022-Q3", None, subject="app:3", subject_label="项目丙", **q3),
    ]
    decisions = decide(cfg.campaign, ob, open_, units, D(2022, 10, 8))  # E1
    by = {(d.unit_key, d.kind.value): d for d in decisions}
    assert set(by) == {("220723", "overdue"), ("220722", "overdue"), ("220700", "escalation")}
    assert sorted(by[("220723", "overdue")].instance_ids) == [1, 2]
    assert (
        "项目甲" in by[("220723", "overdue")].message.body
        and "项目乙" in by[("220723", "overdue")].message.body
    )
    escalation = by[("220700", "escalation")].message.body
    assert (
        "乾安县" in escalation
        and "乾安县（逾期 8 天）：项目乙、项目甲" in escalation
        and "长岭县" in escalation
    )
    # Decided already: the same day again decides only the supervisor's escalation (deduplicated by the outbox).
    again = [OpenInstance(**{**i.__dict__, "last_step": "E1"}) for i in open_]
    assert [(d.unit_key, d.kind.value) for d in decide(cfg.campaign, ob, again, units, D(2022, 10, 8))] == [
        ("220700", "escalation")
    ]


# ------------------------------------------------------------------ sheets with bad rows
@pytest.fixture
def services_env(env: dict[str, object], config_dir: Path) -> dict[str, object]:
    from config.settings import get_settings
    from models.db import session_scope
    from tasks.sync import sync_hierarchy

    use_small_hierarchy(config_dir)
    get_settings.cache_clear()
    with session_scope() as session:
        sync_hierarchy(session, load_config())
    approve_recommendations(config_dir, Path(str(env["home"])) / "drop", D(2022, 7, 5))
    return env


def _take_in(kind: str, path: Path, on: dt.date) -> dict[str, object]:
    from tasks.funds import fund_intake
    from tasks.sheets import take_in_sheet
    from tasks.trainings import training_intake
    from tasks.visits import visit_intake

    cfg = load_config()
    make = {"visits": visit_intake, "trainings": training_intake, "funds": fund_intake}
    return take_in_sheet(cfg, make[kind](cfg), path, moment(on, cfg.campaign))


def _errors(summary: dict[str, object]) -> list[tuple[int, str, str]]:
    return [(e["row"], e["column"], e["reason"]) for e in summary["errors"]]  # type: ignore[index, union-attr]


def test_bad_visit_rows_are_refused_each_with_its_reason(
    services_env: dict[str, object], tmp_path: Path
) -> None:
    from models.db import session_scope

    rows = [
        visit(1, "2022-08-10"),
        visit(1, "2022-08-11", 项目名称="肉牛养殖项目一"),  # not the name in the pool
        visit(2, "2022-13-45"),
        visit(2, "2022-09-01"),  # after the day it was received
        visit(2, "2022-08-12", 需求类别="物流"),
        visit(2, "2022-08-13", 走访领导=""),
        visit(2, "2022-08-14", 走访单位="农安县"),  # not 乾安县's to report
        visit(1, "2022-08-10", 需求描述="更正：对接两家电商平台"),  # the same visit again: the later row wins
    ]
    path = write_sheet(tmp_path / "乾安县-走访记录表.xlsx", VISIT_HEADERS, rows)
    summary = _take_in("visits", path, D(2022, 8, 20))
    assert (summary["rows_read"], summary["new"], summary["rejected"], summary["duplicates"]) == (8, 1, 6, 1)
    assert _errors(summary) == [
        (3, "项目名称", "培育库中没有该项目（项目名称与统一社会信用代码须与本辖区的培育库申报一致）"),
        (4, "走访日期", "无法识别的日期（示例：2020-05-31、2020/5/31、2020年5月31日）"),
        (5, "走访日期", "晚于报送日期 2022-08-20"),
        (6, "需求类别", "应为以下一项或多项：经营管理、产品研发、品牌打造、包装推介、销售渠道"),
        (7, "走访领导", "必填项为空"),
        (8, "走访单位", "不属于乾安县辖区，请由所在地人社部门报送"),
    ]
    assert [w["row"] for w in summary["warnings"]] == [2]  # type: ignore[union-attr]
    with session_scope() as session:
        kept = session.exec(select(VisitRecord)).all()
        assert [(v.project_name, v.visited_on, v.needs, v.unit_key) for v in kept] == [
            ("肉牛养殖项目1", D(2022, 8, 10), "更正：对接两家电商平台", QIANAN)
        ]
    book = load_workbook(str(summary["error_workbook"]))
    sent_back = list(book["有误的行"].iter_rows(values_only=True))
    assert [r[0] for r in sent_back[1:]] == [3, 4, 5, 6, 7, 8] and sent_back[0][-1] == "错误说明"
    message = next(m for m in outbox() if m.kind == "intake_result" and "走访记录表" in m.subject)
    assert message.unit_key == QIANAN and message.attachment == summary["error_workbook"]
    assert "第 3 行【项目名称】" in message.body and "6 行待更正" in message.subject

    # The same file again changes nothing and tells nobody; the corrected rows come back as new.
    before = len(outbox())
    assert _take_in("visits", path, D(2022, 8, 21))["duplicate_file"]
    assert len(outbox()) == before
    fixed = write_sheet(
        tmp_path / "乾安县-走访记录表（更正）.xlsx",
        VISIT_HEADERS,
        [rows[7], visit(2, "2022-08-12", 需求类别="销售渠道"), visit(2, "2022-08-13")],
    )
    again = _take_in("visits", fixed, D(2022, 8, 21))
    assert (again["new"], again["updated"], again["duplicates"], again["rejected"]) == (2, 0, 1, 0)
    with session_scope() as session:
        assert len(session.exec(select(VisitRecord)).all()) == 3


@pytest.mark.also_postgres
def test_bad_training_and_fund_rows(services_env: dict[str, object], tmp_path: Path) -> None:
    from models.db import session_scope

    trainings = write_sheet(
        tmp_path / "松原市-培训记录表.xlsx",
        TRAINING_HEADERS,
        [
            training(
                "长岭县", "创业者培训", "2022-08-01", "电商创业", 关联项目="肉牛养殖项目1、不存在的项目"
            ),
            training("白城市", "创业者培训", "2022-08-02", "电商创业"),
            training("农安县", "创业者培训", "2022-08-03", "电商创业"),
            training("松原市", "安全培训", "2022-08-04", "安全生产"),
            training("松原市", "农技人员培训", "2022-08-05", "玉米", 参训人数="-3"),
        ],
    )
    summary = _take_in("trainings", trainings, D(2022, 8, 10))
    assert (summary["new"], summary["rejected"]) == (1, 4)
    assert _errors(summary) == [
        (3, "举办单位", "未知的单位或行政区划代码"),
        (4, "举办单位", "不属于松原市辖区，请由所在地人社部门报送"),
        (5, "培训类别", "应为以下之一：创业者培训、农技人员培训"),
        (6, "参训人数", "不能为负数"),
    ]
    assert [(w["row"], w["reason"]) for w in summary["warnings"]] == [(2, "不在本辖区培育库中：不存在的项目")]  # type: ignore[union-attr]

    amounts = {"下达金额（万元）": "100", "下达日期": "2022-06-25"}
    funds = write_sheet(
        tmp_path / "乾安县-资金台账.xlsx",
        FUND_HEADERS,
        [
            fund(
                "乾安县",
                "文1",
                "基地建设补助",
                **amounts,
                **{"到位金额（万元）": "100", "到位日期": "2022-07-01"},
            ),
            fund(
                "乾安县",
                "文2",
                "基地建设补助",
                **amounts,
                **{"到位金额（万元）": "120", "到位日期": "2022-07-01"},
            ),
            fund(
                "乾安县",
                "文3",
                "基地建设补助",
                **amounts,
                **{
                    "到位金额（万元）": "50",
                    "支出金额（万元）": "60",
                    "到位日期": "2022-07-01",
                    "支出日期": "2022-07-02",
                },
            ),
            fund("乾安县", "文4", "基地建设补助", **amounts, **{"到位金额（万元）": "50"}),
            fund("乾安县", "文5", "基地建设补助", 资金来源="中央资金", **amounts),
            fund("乾安县", "文6", "基地建设补助", 资金年度="1990", **amounts),
        ],
    )
    summary = _take_in("funds", funds, D(2022, 8, 10))
    assert (summary["new"], summary["rejected"]) == (1, 5)
    assert _errors(summary) == [
        (3, "到位金额（万元）", "大于下达金额"),
        (4, "支出金额（万元）", "大于到位金额"),
        (5, "到位金额（万元）", "已填金额，到位日期为空"),
        (6, "资金来源", "应为以下之一：省级专项资金、市级资金、县级资金、因素法下达资金"),
        (7, "资金年度", "年度不合理"),
    ]
    with session_scope() as session:
        assert [t.unit_key for t in session.exec(select(TrainingRecord)).all()] == ["220722"]
        assert [f.document_no for f in session.exec(select(FundRecord)).all()] == ["文1"]
    assert SONGYUAN  # the training sheet's sender


@pytest.mark.usefixtures("prefect_harness")
def test_an_operator_records_visits_and_trainings_in_a_form(services_env: dict[str, object]) -> None:
    from flows.services import TrainingEntry, VisitEntry, record_services
    from models.db import session_scope

    with session_scope() as session:
        ids = {a.project_name: a.id for a in session.exec(select(PoolApplication)).all()}
    visits = [
        VisitEntry(
            project_id=ids["肉牛养殖项目1"],
            visited_on=D(2022, 8, 1),
            leader_name="王县长",
            need_categories=["销售渠道"],
        ),
        VisitEntry(project_id=99999, visited_on=D(2022, 8, 2), leader_name="王县长"),
    ]
    trainings = [
        TrainingEntry(unit="乾安县", kind="创业者培训", held_on=D(2022, 8, 3), topic="电商", attendees=30)
    ]
    result = record_services("乾安县", "省局经办人", visits=visits, trainings=trainings, today=D(2022, 8, 5))
    assert (result["visits"]["new"], result["visits"]["rejected"]) == (1, 1)
    assert {(e["column"], e["value"]) for e in result["visits"]["errors"]} == {
        ("统一社会信用代码", ""),
        ("项目名称", "编号 99999"),
    }
    assert result["trainings"]["new"] == 1
    with session_scope() as session:
        assert [v.needs for v in session.exec(select(VisitRecord)).all()] == [""]
        h2 = session.exec(
            select(ObligationInstance).where(
                ObligationInstance.obligation_key == "entrepreneur_training",
                ObligationInstance.unit_key == QIANAN,
            )
        ).one()
        assert (h2.status, h2.done_count) == ("submitted", 1)
    told = [m for m in outbox() if m.kind == "intake_result" and m.unit_key == QIANAN and "走访" in m.subject]
    assert len(told) == 1 and "编号 99999" in told[0].body

    again = record_services("乾安县", "省局经办人", visits=visits, trainings=trainings, today=D(2022, 8, 5))
    assert again["visits"]["duplicate_file"] and again["trainings"]["duplicate_file"]
    assert len([m for m in outbox() if m.kind == "intake_result" and "走访" in m.subject]) == 1


def test_3_4_96885_postings_are_counted_per_unit_from_the_bureaus_sheet(
    services_env: dict[str, object], tmp_path: Path
) -> None:
    """三(四) "通过'96885吉人在线'…为培育库项目免费发布招聘信息": the platform has no interface, so bureaus
    send a 招聘发布记录表. 乾安县 posts for its pool projects 1 (3 postings, then corrected to 4) and 2 (1);
    a project outside its pool is refused. The service summary shows 2 projects and 5 postings."""
    from models.db import session_scope
    from tasks.services import service_summary
    from tasks.sheets import take_in_sheet
    from tasks.visits import posting_intake

    headers = ["项目名称", "统一社会信用代码", "发布日期", "发布条数", "招聘岗位数", "备注"]
    rows = [
        {
            "项目名称": "肉牛养殖项目1",
            "统一社会信用代码": credit_code(1),
            "发布日期": "2022-08-01",
            "发布条数": "3",
        },
        {
            "项目名称": "肉牛养殖项目2",
            "统一社会信用代码": credit_code(2),
            "发布日期": "2022-08-05",
            "发布条数": "1",
        },
        {
            "项目名称": "肉牛养殖项目9",
            "统一社会信用代码": credit_code(9),
            "发布日期": "2022-08-05",
            "发布条数": "2",
        },
        {
            "项目名称": "肉牛养殖项目1",
            "统一社会信用代码": credit_code(1),
            "发布日期": "2022-08-01",
            "发布条数": "4",
        },
    ]
    cfg = load_config()
    path = write_sheet(tmp_path / "乾安县-招聘发布记录表.xlsx", headers, rows)
    summary = take_in_sheet(cfg, posting_intake(cfg), path, moment(D(2022, 8, 10), cfg.campaign))
    assert (summary["rows_read"], summary["new"], summary["rejected"], summary["duplicates"]) == (4, 2, 1, 1)
    assert _errors(summary) == [
        (4, "项目名称", "培育库中没有该项目（项目名称与统一社会信用代码须与本辖区的培育库申报一致）")
    ]
    with session_scope() as session:
        table = service_summary(session, cfg, D(2022, 8, 10)).set_index("代码")
    assert table.loc[QIANAN, "招聘发布（项目/条）"] == "2/5"


def test_3_4_three_services_reach_every_pool_project_not_only_the_recommended(
    services_env: dict[str, object], config_dir: Path, tmp_path: Path
) -> None:
    """三(四) "三送…对象上要涵盖本级全部入库项目": 乾安县's pool holds projects 1 and 2 (both recommended to
    松原市, so in its pool too) and project 7, admitted in August and never recommended. A visit to 7 and a
    job posting for 1 serve two of 乾安县's three, and one of 松原市's two; 长春市's pool is empty.
    What serves is the file's (`services.served_by`, 示意): a year counting visits only has 1 of 3."""
    from models.db import session_scope
    from tasks.pool import take_in_workbook
    from tasks.services import service_summary
    from tasks.sheets import take_in_sheet
    from tasks.visits import posting_intake

    cfg = load_config()
    pool = write_xlsx(tmp_path / "乾安县-培育库申报表（八月）.xlsx", [application(7)])
    assert take_in_workbook(cfg, pool, moment(D(2022, 8, 1), cfg.campaign))["admitted"] == 1
    visits = write_sheet(tmp_path / "乾安县-走访记录表.xlsx", VISIT_HEADERS, [visit(7, "2022-08-10")])
    assert _take_in("visits", visits, D(2022, 8, 20))["new"] == 1  # an unrecommended pool project
    posting = {"项目名称": "肉牛养殖项目1", "统一社会信用代码": credit_code(1), "发布日期": "2022-08-15"}
    headers = ["项目名称", "统一社会信用代码", "发布日期", "发布条数"]
    path = write_sheet(tmp_path / "乾安县-招聘发布记录表.xlsx", headers, [posting | {"发布条数": "2"}])
    take_in_sheet(cfg, posting_intake(cfg), path, moment(D(2022, 8, 20), cfg.campaign))

    with session_scope() as session:
        table = service_summary(session, cfg, D(2022, 8, 31)).set_index("代码")
        before = service_summary(session, cfg, D(2022, 8, 12)).set_index("代码")  # the posting not yet
    column = "三送覆盖（已服务/入库项目）"
    assert table.loc[QIANAN, column] == "2/3" and table.loc[QIANAN, "三送覆盖率"] == "67%"
    assert table.loc[SONGYUAN, column] == "1/2" and table.loc[SONGYUAN, "三送覆盖率"] == "50%"
    assert table.loc[CHANGCHUN, column] == "0/0" and table.loc[CHANGCHUN, "三送覆盖率"] == "—"
    assert before.loc[QIANAN, column] == "1/3"

    assert load_config().campaign.services.served_by == ("走访", "招聘发布", "培训")  # type: ignore[union-attr]
    edit_yaml(config_dir / "campaigns" / "2022.yaml", lambda d: d["services"].update(served_by=["走访"]))
    with session_scope() as session:
        visits_only = service_summary(session, load_config(), D(2022, 8, 31)).set_index("代码")
    assert visits_only.loc[QIANAN, column] == "1/3" and visits_only.loc[SONGYUAN, column] == "0/2"
