"""Walk the year-round services through 2022 (06-21 … 12-31, real holidays and make-up days) on a small
hierarchy, and check every kickoff, reminder, overdue notice and escalation each flow sends, and when.

The dates come from the hand-written table of test_calendar_2022 (which proves every other day of the
year decides nothing, without Prefect); the records arrive as the scenario below says. An instance
that is open gets its step's message on the step's day; its supervisor gets one escalation per step.
Each flow runs on its own event days only (plus a few days all run), and twice on the busiest.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import select

from config import load_config
from models.planning import owes
from models.tables import FundRecord, ObligationInstance, ServiceFlag, VisitNeed
from tests.helpers import outbox
from tests.pool_data import credit_code
from tests.service_data import (
    CHANGCHUN,
    CHANGLING,
    FUND_HEADERS,
    MEIHEKOU,
    NONGAN,
    PROVINCE,
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
from tests.test_calendar_2022 import LEADER_ASSIGNMENT, TABLE
from tests.test_calendar_2022 import QIANAN as TABLE_UNIT

pytestmark = pytest.mark.usefixtures("prefect_harness")

D = dt.date
START, END = D(2022, 6, 21), D(2022, 12, 31)
APPROVED, ASSIGNED = D(2022, 7, 5), D(2022, 7, 14)
A, B, C = "肉牛养殖项目1", "肉牛养殖项目2", "人参种植项目3"

# What arrives when: (day, inbox folder, file name, headers, rows). Dropped before that day's runs.
DROPS = [
    (
        D(2022, 7, 20),
        "funds_tracking",
        "乾安县-资金台账.xlsx",
        FUND_HEADERS,
        [
            fund(
                "乾安县",
                "吉人社函〔2022〕31号",
                "基地建设补助",
                **{
                    "下达金额（万元）": "100",
                    "下达日期": "2022-06-25",
                    "到位金额（万元）": "100",
                    "到位日期": "2022-07-10",
                    "支出金额（万元）": "70",
                    "支出日期": "2022-07-15",
                },
            ),
            fund(
                "乾安县",
                "吉人社函〔2022〕31号",
                "办公楼装修",
                **{
                    "下达金额（万元）": "10",
                    "下达日期": "2022-06-25",
                    "到位金额（万元）": "10",
                    "到位日期": "2022-07-10",
                    "支出金额（万元）": "5",
                    "支出日期": "2022-07-15",
                },
            ),
        ],
    ),
    (
        D(2022, 8, 8),
        "trainings",
        "松原市-培训记录表.xlsx",
        TRAINING_HEADERS,
        [training("松原市", "农技人员培训", "2022-08-05", "肉牛养殖技术")],
    ),
    (D(2022, 8, 11), "leader_visits", "乾安县-走访记录表.xlsx", VISIT_HEADERS, [visit(1, "2022-08-10")]),
    (
        D(2022, 9, 16),
        "trainings",
        "乾安县-培训记录表.xlsx",
        TRAINING_HEADERS,
        [training("乾安县", "创业者培训", "2022-09-15", "电商创业")],
    ),
    (
        D(2022, 9, 16),
        "funds_tracking",
        "松原市-资金台账.xlsx",
        FUND_HEADERS,
        [
            fund(
                "松原市",
                "吉人社函〔2022〕8号",
                "基地建设补助",
                资金年度="2021",
                **{
                    "下达金额（万元）": "50",
                    "下达日期": "2022-06-22",
                    "到位金额（万元）": "50",
                    "到位日期": "2022-06-25",
                    "支出金额（万元）": "50",
                    "支出日期": "2022-07-01",
                },
            ),
            fund(
                "松原市",
                "松人社发〔2022〕12号",
                "基地建设补助",
                资金来源="市级资金",
                资金年度="2021",
                **{
                    "下达金额（万元）": "30",
                    "下达日期": "2022-06-22",
                    "到位金额（万元）": "30",
                    "到位日期": "2022-09-10",
                    "支出金额（万元）": "30",
                    "支出日期": "2022-09-15",
                },
            ),
        ],
    ),
    (
        D(2022, 9, 29),
        "leader_visits",
        "梅河口市-走访记录表.xlsx",
        VISIT_HEADERS,
        [
            visit(
                3,
                "2022-09-28",
                项目名称=C,
                统一社会信用代码=credit_code(3, MEIHEKOU),
                走访领导="孙市长",
                领导职务="市长",
                需求类别="产品研发",
            ),
        ],
    ),
    (
        D(2022, 10, 21),
        "trainings",
        "乾安县-农技培训.xlsx",
        TRAINING_HEADERS,
        [training("乾安县", "农技人员培训", "2022-10-20", "玉米种植")],
    ),
    (
        D(2022, 11, 7),
        "trainings",
        "松原市-培训记录表2.xlsx",
        TRAINING_HEADERS,
        [training("松原市", "农技人员培训", "2022-11-05", "冬季养殖")],
    ),
    (
        D(2022, 11, 16),
        "leader_visits",
        "乾安县-走访记录表2.xlsx",
        VISIT_HEADERS,
        [visit(1, "2022-11-15"), visit(2, "2022-11-15", 需求类别="经营管理")],
    ),
    (
        D(2022, 12, 2),
        "trainings",
        "松原市-创业培训.xlsx",
        TRAINING_HEADERS,
        [training("松原市", "创业者培训", "2022-12-01", "返乡创业经验交流")],
    ),
    (
        D(2022, 12, 20),
        "funds_tracking",
        "乾安县-资金台账（更新）.xlsx",
        FUND_HEADERS,
        [
            fund(
                "乾安县",
                "吉人社函〔2022〕31号",
                "基地建设补助",
                **{
                    "下达金额（万元）": "100",
                    "下达日期": "2022-06-25",
                    "到位金额（万元）": "100",
                    "到位日期": "2022-07-10",
                    "支出金额（万元）": "100",
                    "支出日期": "2022-12-15",
                },
            ),
            fund(
                "乾安县",
                "吉人社函〔2022〕31号",
                "办公楼装修",
                **{
                    "下达金额（万元）": "10",
                    "下达日期": "2022-06-25",
                    "到位金额（万元）": "10",
                    "到位日期": "2022-07-10",
                    "支出金额（万元）": "10",
                    "支出日期": "2022-12-15",
                },
            ),
        ],
    ),
]

# When each instance is satisfied; absent: never in 2022. (obligation, unit, period label, project)
SATISFIED = {
    ("leader_assignment", QIANAN, "2022", A): ASSIGNED,
    ("leader_assignment", QIANAN, "2022", B): ASSIGNED,
    ("leader_assignment", MEIHEKOU, "2022", C): APPROVED,  # 梅河口市's leader is in regions.yaml
    ("leader_visits", QIANAN, "2022-Q3", A): D(2022, 8, 11),
    ("leader_visits", MEIHEKOU, "2022-Q3", C): D(2022, 9, 29),
    ("leader_visits", QIANAN, "2022-Q4", A): D(2022, 11, 16),
    ("leader_visits", QIANAN, "2022-Q4", B): D(2022, 11, 16),
    ("entrepreneur_training", QIANAN, "2022-H2", ""): D(2022, 9, 16),
    ("entrepreneur_training", SONGYUAN, "2022-H2", ""): D(2022, 12, 2),
    ("agri_tech_training", QIANAN, "2022", ""): D(2022, 10, 21),
    ("agri_tech_training", SONGYUAN, "2022", ""): D(2022, 11, 7),  # the second of two
    ("funds_tracking", QIANAN, "2022-09-30", ""): D(2022, 7, 20),  # 68 % executed ≥ 60 %
    ("funds_tracking", QIANAN, "2022-12-31", ""): D(2022, 12, 20),
    ("funds_tracking", SONGYUAN, "2022-09-30", ""): D(2022, 9, 16),
    ("funds_tracking", SONGYUAN, "2022-12-31", ""): D(2022, 9, 16),  # 100 % already
}


@dataclass(frozen=True)
class Owed:
    ob: str
    unit: str
    period: str
    created: dt.date
    project: str = ""

    def open_on(self, day: dt.date) -> bool:
        done = SATISFIED.get((self.ob, self.unit, self.period, self.project))
        return self.created <= day and (done is None or done > day)

    @property
    def steps(self) -> dict[dt.date, str]:
        """Its steps, from the hand-written 2022 table (the same for every unit that owes it)."""
        if self.ob == "leader_assignment":
            return {APPROVED: "kickoff", **LEADER_ASSIGNMENT}
        return TABLE[(self.ob, self.period, TABLE_UNIT)]

    def step_on(self, day: dt.date | None) -> str | None:
        """The step in force on `day`: the latest one on or before it."""
        dates = [d for d in self.steps if day is not None and d <= day]
        return self.steps[max(dates)] if dates else None


def owed_instances() -> list[Owed]:
    cfg = load_config()
    campaign = cfg.campaign
    out: list[Owed] = []
    for key, period in TABLE_PERIODS:
        ob = campaign.obligation(key)
        out += [Owed(key, u.key, period, START) for u in cfg.units if owes(ob, u)]
    projects = [(QIANAN, A), (QIANAN, B), (MEIHEKOU, C)]
    out += [Owed("leader_assignment", u, "2022", APPROVED, p) for u, p in projects]
    # Approved on 07-05 with more than 10 working days left in Q3: first owed a visit in Q3.
    out += [Owed("leader_visits", u, q, APPROVED, p) for q in ("2022-Q3", "2022-Q4") for u, p in projects]
    return out


TABLE_PERIODS = [
    ("entrepreneur_training", "2022-H2"),
    ("agri_tech_training", "2022"),
    ("funds_tracking", "2022-09-30"),
    ("funds_tracking", "2022-12-31"),
]
Key = tuple[str, str, str, str, str]  # obligation, period, recipient, kind, step


def expected_between(
    previous: dt.date | None, day: dt.date, owed: list[Owed], fired: set[Key]
) -> Counter[Key]:
    """What the runs on `day` decide, given that the last runs were on `previous`."""
    cfg = load_config()
    units = {u.key: u for u in cfg.units}
    out: Counter[Key] = Counter()
    for inst in owed:
        if not inst.open_on(day):
            continue
        step = inst.step_on(day)
        if step is None:
            continue
        seen_before = previous is not None and inst.created <= previous and inst.open_on(previous)
        if seen_before and inst.step_on(previous) == step:
            continue
        supervisor = units[inst.unit].reports_to
        if step == "kickoff":
            if inst.ob != "leader_assignment":  # the approval told the unit already
                out[(inst.ob, inst.period, inst.unit, "kickoff", step)] = 1
        elif step.startswith("D"):
            out[(inst.ob, inst.period, inst.unit, "reminder", step)] = 1
        elif supervisor:
            out[(inst.ob, inst.period, inst.unit, "overdue", step)] = 1
        if step.startswith("E") and supervisor:
            key = (inst.ob, inst.period, supervisor, "escalation", step)
            if key not in fired:
                fired.add(key)
                out[key] = 1
    return out


FLOW_OF = {  # which flow reminds each obligation, and takes in each inbox folder (campaigns/2022.yaml)
    "leader_assignment": "quarterly_visits",
    "leader_visits": "quarterly_visits",
    "entrepreneur_training": "half_year_training",
    "agri_tech_training": "half_year_training",
    "funds_tracking": "funds_tracking",
    "trainings": "half_year_training",
}
EVERY_FLOW = {"quarterly_visits", "half_year_training", "funds_tracking"}


def walk_days(owed: list[Owed]) -> dict[dt.date, set[str]]:
    """The days the walk runs, each with the flows that have a step or a file that day; every flow on
    the first and last day, the approval, the assignment and a day of the October holiday (10-03)."""
    days: dict[dt.date, set[str]] = {
        d: set(EVERY_FLOW) for d in (START, APPROVED, ASSIGNED, END, D(2022, 10, 3))
    }
    for day, folder, *_ in DROPS:
        days.setdefault(day, set()).add(FLOW_OF[folder])
    for inst in owed:
        for day in inst.steps:
            days.setdefault(day, set()).add(FLOW_OF[inst.ob])
    return {d: days[d] for d in sorted(days) if START <= d <= END}


def decided(rows: list) -> Counter[Key]:  # type: ignore[type-arg]
    got: Counter[Key] = Counter()
    for m in rows:
        if m.kind in ("kickoff", "reminder", "overdue", "escalation"):
            _, _, ob, period, *_ = m.dedupe_key.split(":")  # kind:year:obligation:period:…
            got[(ob, period.split("@")[0], m.unit_key, m.kind, m.step)] += 1
    return got


def test_a_year_of_services_day_by_day(env: dict[str, object], config_dir: Path) -> None:
    from config.settings import get_settings
    from flows.services import (
        LeaderChoice,
        assign_leaders,
        funds_tracking,
        half_year_training,
        quarterly_visits,
    )

    use_small_hierarchy(config_dir)
    get_settings.cache_clear()
    home = Path(str(env["home"]))
    owed = owed_instances()
    fired: set[Key] = set()
    flows = (quarterly_visits, half_year_training, funds_tracking)
    seen, project_ids = 0, {}
    previous: dict[str, dt.date] = {}  # the last day each flow ran
    intake_results: list[str] = []
    for day, running in walk_days(owed).items():
        if day == APPROVED:
            project_ids = approve_recommendations(config_dir, home / "drop", day)
            seen = max(m.id for m in outbox())  # the pool's own messages are its tests' business
        if day == ASSIGNED:
            result = assign_leaders(
                [
                    LeaderChoice(project_id=project_ids[p], leader_name="王县长", leader_title="副县长")
                    for p in (A, B)
                ],
                operator="省局经办人",
                today=day,
            )
            assert [a["project"] for a in result["assigned"]] == [A, B] and result["refused"] == []
        for drop_day, folder, name, headers, rows in DROPS:
            if drop_day == day:
                write_sheet(home / "inbox" / folder / name, headers, rows)
                intake_results.append(name)
        todays = [fl for fl in flows if fl.name in running]
        for fl in todays:
            fl(today=day)
        if day in (APPROVED, D(2022, 10, 8)):  # the approval; escalations on a make-up Saturday
            for fl in todays:
                fl(today=day)  # the same day again: nothing new may be decided or sent
        rows = [m for m in outbox() if m.id > seen]
        seen = max([seen, *(m.id for m in rows)])
        want: Counter[Key] = Counter()
        for fl in todays:
            mine = [inst for inst in owed if FLOW_OF[inst.ob] == fl.name]
            want += expected_between(previous.get(fl.name), day, mine, fired)
            previous[fl.name] = day
        got = decided(rows)
        assert got == want, f"{day}: unexpected {got - want}, missing {want - got}"
        assert all(m.status == "sent" for m in rows)

    everything = outbox()
    assert len({m.dedupe_key for m in everything}) == len(everything)
    # Every sheet was answered once, to its sender.
    results = [m for m in everything if m.kind == "intake_result"]
    assert sorted(m.subject.split("：", 1)[1].rsplit("（", 1)[0] for m in results) == sorted(
        [*intake_results, "乾安县-培育库申报表.xlsx", "梅河口市-培育库申报表.xlsx"]
    )

    # The missed Q3 visit (乾安县's project 2) was escalated to 松原市 once per step, naming only it.
    escalations = [
        m
        for m in everything
        if m.kind == "escalation" and m.unit_key == SONGYUAN and ":leader_visits:2022-Q3:" in m.dedupe_key
    ]
    assert [m.step for m in escalations] == ["E1", "E2", "E3"]
    assert all(B in m.body and A not in m.body and "乾安县" in m.body for m in escalations)
    # 梅河口市 answers to the province: its missed funds checkpoint went there, not to a city.
    to_province = [m for m in everything if m.unit_key == PROVINCE and m.kind == "escalation"]
    assert any("梅河口市" in m.body and "未报送资金台账" in m.body for m in to_province)
    # 包保: 乾安县 heard on the due day and once overdue; 松原市 once; then the operator named the leader.
    assignment = [m for m in everything if ":leader_assignment:" in m.dedupe_key]
    assert sorted((m.unit_key, m.kind, m.step, m.created_at is not None) for m in assignment) == [
        (SONGYUAN, "escalation", "E1", True),
        (QIANAN, "overdue", "E1", True),
        (QIANAN, "reminder", "D0", True),
    ]

    # Flags: the diversion and the out-of-step subsidies, each raised and told once, at once.
    flags = [m for m in everything if m.kind == "flag"]
    assert sorted((m.unit_key, "挪用" in m.subject, "同步" in m.subject) for m in flags) == [
        (PROVINCE, False, True),
        (PROVINCE, True, False),
        (SONGYUAN, False, True),
        (QIANAN, True, False),
    ]
    diversion = next(m for m in flags if m.unit_key == PROVINCE and "挪用" in m.subject)
    assert "办公楼装修" in diversion.body and "乾安县" in diversion.body
    from models.db import session_scope

    with session_scope() as session:
        raised = session.exec(select(ServiceFlag)).all()
        assert sorted((f.kind, f.unit_key, f.raised_at.date()) for f in raised) == [
            ("diversion", QIANAN, dt.date(2022, 7, 20)),
            ("subsidy_out_of_step", SONGYUAN, dt.date(2022, 9, 16)),
        ]
        ledger = session.exec(select(FundRecord).where(FundRecord.unit_key == QIANAN)).all()
        assert len(ledger) == 2 and {r.executed for r in ledger} == {100, 10}  # the resubmission updated
        progress = {
            (i.obligation_key, i.unit_key, i.period, i.subject_label): (
                i.status,
                i.done_count,
                i.progress_note,
            )
            for i in session.exec(select(ObligationInstance)).all()
        }
        assert progress[("agri_tech_training", SONGYUAN, "2022", "")] == (
            "submitted",
            2,
            "已完成 2 次，应不少于 2 次",
        )
        assert progress[("agri_tech_training", CHANGCHUN, "2022", "")] == (
            "open",
            0,
            "已完成 0 次，应不少于 2 次",
        )
        assert progress[("funds_tracking", NONGAN, "2022-12-31", "")][2] == "未报送资金台账"
        assert progress[("leader_visits", MEIHEKOU, "2022-Q4", C)][0] == "open"
        assert progress[("leader_assignment", QIANAN, "2022", A)] == ("submitted", 1, "包保领导：王县长")
        needs = {(n.quarter, n.city_key, n.category): n.visits for n in session.exec(select(VisitNeed)).all()}
        assert needs == {
            ("2022-Q3", SONGYUAN, "品牌打造"): 1,
            ("2022-Q3", SONGYUAN, "销售渠道"): 1,
            ("2022-Q3", MEIHEKOU, "产品研发"): 1,
            ("2022-Q4", SONGYUAN, "品牌打造"): 1,
            ("2022-Q4", SONGYUAN, "销售渠道"): 1,
            ("2022-Q4", SONGYUAN, "经营管理"): 1,
        }
    assert CHANGLING  # a county that never reported anything: covered by the expected messages above
