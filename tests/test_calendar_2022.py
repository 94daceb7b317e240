"""The 2022 calendar proven without Prefect or a database: every day from 2022-01-01 to 2023-01-31
goes through the pure decision function (`models.planning.decide`), and what it decides must be
exactly this table, written by hand from the notice (吉人社发〔2022〕17号), config/campaigns/2022.yaml and
the State Council's 2022 holiday arrangement:

- 端午 06-03…06-05; 中秋 09-10…09-12; 国庆 10-01…10-07 with make-up working days 10-08 (Sat), 10-09 (Sun);
  元旦 2022-12-31…2023-01-02.
- Reminders 10, 5 and 1 working days before the due date and on it (or the last working day before
  it); one that falls on or before the kickoff is dropped. Escalations 1 working day after the due
  date, then every 5 working days, three in all, unless the obligation does not escalate.

The integrated walks (test_time_travel, test_service_year) check the same dates through the flows and
the outbox, on the event days only.
"""

from __future__ import annotations

import datetime as dt

import pytest

from config import load_config
from models.deadlines import periods
from models.planning import OpenInstance, decide

D = dt.date
QIANAN, SONGYUAN, PROVINCE = "220723", "220700", "220000"  # 乾安县 reports to 松原市, 松原市 to the province

KICKOFF_0621 = {D(2022, 6, 21): "kickoff"}
YEAR_END = {  # due 2022-12-31, a Saturday of 元旦: D0 and D-1 fall together on Friday 12-30
    D(2022, 12, 19): "D-10",
    D(2022, 12, 26): "D-5",
    D(2022, 12, 30): "D0",
    D(2023, 1, 3): "E1",  # 01-01 and 01-02 are 元旦
    D(2023, 1, 10): "E2",
    D(2023, 1, 17): "E3",
}
SEPT_30 = {  # due Friday 09-30, before 国庆: E1 on the make-up Saturday, E2 counts the make-up Sunday
    D(2022, 9, 16): "D-10",
    D(2022, 9, 23): "D-5",
    D(2022, 9, 29): "D-1",
    D(2022, 9, 30): "D0",
    D(2022, 10, 8): "E1",
    D(2022, 10, 13): "E2",
    D(2022, 10, 20): "E3",
}
JUNE_30 = {  # both June obligations, due Thursday 06-30
    **KICKOFF_0621,  # D-10 would be 06-16, before the kickoff: dropped
    D(2022, 6, 23): "D-5",
    D(2022, 6, 29): "D-1",
    D(2022, 6, 30): "D0",
    D(2022, 7, 1): "E1",
    D(2022, 7, 8): "E2",
    D(2022, 7, 15): "E3",
}
NO_ESCALATION = {day: step for day, step in YEAR_END.items() if not step.startswith("E")}

# (obligation, period, owing unit) -> {day: step}. Written by hand; nothing here is computed.
TABLE: dict[tuple[str, str, str], dict[dt.date, str]] = {
    ("june_survey", "2022", QIANAN): JUNE_30,
    ("standards_filing", "2022", QIANAN): JUNE_30,
    # Quarterly from 07-01: Q1 and Q2 are not owed in 2022. Q4 starts on 国庆, so its kickoff is 10-08.
    ("leader_visits", "2022-Q3", QIANAN): {D(2022, 7, 1): "kickoff", **SEPT_30},
    ("leader_visits", "2022-Q4", QIANAN): {D(2022, 10, 8): "kickoff", **YEAR_END},
    ("entrepreneur_training", "2022-H2", QIANAN): {D(2022, 7, 1): "kickoff", **YEAR_END},
    # Yearly, kicked off on the notice's date. A city's 2 are a minimum and escalate; a county's 1 is
    # "原则上" (a principle): reminded, never chased as overdue nor escalated.
    ("agri_tech_training", "2022", SONGYUAN): {**KICKOFF_0621, **YEAR_END},
    ("agri_tech_training", "2022", QIANAN): {**KICKOFF_0621, **NO_ESCALATION},
    ("funds_tracking", "2022-09-30", QIANAN): {**KICKOFF_0621, **SEPT_30},
    ("funds_tracking", "2022-12-31", QIANAN): {D(2022, 10, 8): "kickoff", **YEAR_END},
    ("review_plan", "2022", QIANAN): {D(2022, 9, 1): "kickoff", **SEPT_30},
    ("base_review", "2022", QIANAN): {  # due Monday 10-31
        D(2022, 9, 1): "kickoff",
        D(2022, 10, 17): "D-10",
        D(2022, 10, 24): "D-5",
        D(2022, 10, 28): "D-1",
        D(2022, 10, 31): "D0",
        D(2022, 11, 1): "E1",
        D(2022, 11, 8): "E2",
        D(2022, 11, 15): "E3",
    },
    # The province's own round (示意 11-01 … Thursday 12-15): reminded; nobody above it to escalate to.
    ("provincial_review", "2022", PROVINCE): {
        D(2022, 11, 1): "kickoff",
        D(2022, 12, 1): "D-10",
        D(2022, 12, 8): "D-5",
        D(2022, 12, 14): "D-1",
        D(2022, 12, 15): "D0",
    },
    ("typical_bases", "2022", SONGYUAN): {**KICKOFF_0621, **YEAR_END},  # owed by cities only
    ("experience_article", "2022", SONGYUAN): {**KICKOFF_0621, **YEAR_END},
    ("exchange_meeting", "2022", PROVINCE): {D(2022, 7, 1): "kickoff", **NO_ESCALATION},
    ("income_report", "2022", QIANAN): {  # due Thursday 12-15; D-10 would be the kickoff day: dropped
        D(2022, 12, 1): "kickoff",
        D(2022, 12, 8): "D-5",
        D(2022, 12, 14): "D-1",
        D(2022, 12, 15): "D0",
        D(2022, 12, 16): "E1",
        D(2022, 12, 23): "E2",
        D(2022, 12, 30): "E3",
    },
    ("annual_assessment", "2022", PROVINCE): {D(2022, 12, 1): "kickoff", **NO_ESCALATION},
}

# 包保 (after an event): a recommendation approved on Tuesday 07-05 is due 5 working days later, 07-12.
# No kickoff notice (the approval told the unit) and no reminders before the due day.
LEADER_ASSIGNMENT = {
    D(2022, 7, 12): "D0",
    D(2022, 7, 13): "E1",
    D(2022, 7, 20): "E2",
    D(2022, 7, 27): "E3",
}


def walk(obligation: str, instance: OpenInstance) -> dict[dt.date, list[tuple[str, str, str]]]:
    """Each day from 2022-01-01 to 2023-01-31 through `decide`, remembering the last decided step as
    the flows do: {day: [(recipient, kind, step)]} for the days something was decided."""
    cfg = load_config()
    ob = cfg.campaign.obligation(obligation)
    units = {u.key: u for u in cfg.units}
    decided: dict[dt.date, list[tuple[str, str, str]]] = {}
    keys: set[str] = set()  # the outbox's unique keys: a decision already stored is not new
    day = D(2022, 1, 1)
    while day <= D(2023, 1, 31):
        decisions = [d for d in decide(cfg.campaign, ob, [instance], units, day) if d.dedupe_base not in keys]
        keys |= {d.dedupe_base for d in decisions}
        if decisions:
            decided[day] = sorted((d.unit_key, str(d.kind), d.step) for d in decisions)
            instance = OpenInstance(**{**instance.__dict__, "last_step": decisions[0].step})
        day += dt.timedelta(days=1)
    return decided


def expected(steps: dict[dt.date, str], unit: str, supervisor: str | None, kickoff_notice: bool = True):
    out: dict[dt.date, list[tuple[str, str, str]]] = {}
    for day, step in steps.items():
        if step == "kickoff":
            if kickoff_notice:
                out[day] = [(unit, "kickoff", step)]
        elif step.startswith("D"):
            out[day] = [(unit, "reminder", step)]
        else:
            out[day] = sorted([(unit, "overdue", step), (supervisor or "", "escalation", step)])
    return out


SUPERVISOR = {QIANAN: SONGYUAN, SONGYUAN: PROVINCE, PROVINCE: None}


@pytest.mark.parametrize(("obligation", "period", "unit"), list(TABLE), ids=lambda v: str(v))
def test_every_day_of_2022_decides_what_the_notice_says(obligation: str, period: str, unit: str) -> None:
    decided = walk(obligation, OpenInstance(id=1, unit_key=unit, period=period, subject="app:1"))
    assert decided == expected(TABLE[(obligation, period, unit)], unit, SUPERVISOR[unit])


def test_the_table_covers_every_dated_period_of_2022() -> None:
    cfg = load_config()
    owed = {(ob.key, p.label) for ob in cfg.campaign.obligations for p in periods(cfg.campaign, ob)}
    assert owed == {(ob, period) for ob, period, _ in TABLE}


def test_leader_assignment_runs_from_its_approval() -> None:
    instance = OpenInstance(
        id=1,
        unit_key=QIANAN,
        period="2022",
        kickoff_on=D(2022, 7, 5),
        due_on=D(2022, 7, 12),
        subject="app:1",
        subject_label="肉牛养殖项目1",
    )
    decided = walk("leader_assignment", instance)
    assert decided == expected(LEADER_ASSIGNMENT, QIANAN, SONGYUAN, kickoff_notice=False)
