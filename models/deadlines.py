"""The one way to compute a deadline: periods, and the kickoff/reminder/escalation steps of each.

Pure functions over the campaign config and a working-day calendar; no database, no Prefect. The same
plan drives the flows, the calendar preview and the tests.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from config.schema import AfterEvent, Campaign, Checkpoints, Obligation, Once, Periodic, Rolling
from models.workdays import WorkingCalendar


class StepKind(StrEnum):
    kickoff = "kickoff"
    reminder = "reminder"
    escalation = "escalation"


@dataclass(frozen=True, order=True)
class Step:
    date: dt.date
    kind: StepKind
    code: str  # "kickoff", "D-5", "D0", "E1" — part of every outbox dedupe key: never renumber


@dataclass(frozen=True)
class Period:
    label: str  # "2022", "2022-Q3", "2022-H2", "2022-09-30" (a checkpoint)
    kickoff: dt.date
    due: dt.date
    # What counts toward it from: a calendar period counts from its natural start (1 January for a
    # year, 三(四) "每年") even when the campaign starts it later; None: from the kickoff.
    counts_from: dt.date | None = field(default=None, compare=False)

    @property
    def opens(self) -> dt.date:
        return self.counts_from or self.kickoff


def calendar_for(campaign: Campaign) -> WorkingCalendar:
    return WorkingCalendar(campaign.working_days.holidays, campaign.working_days.makeup_workdays)


def periods(campaign: Campaign, ob: Obligation) -> list[Period]:
    """The periods an obligation is owed for in the campaign year.

    None for rolling ones, and none for those owed after an event: each instance of those carries
    its own dates (see `after_event_period`).
    """
    sched = ob.schedule
    year = campaign.year
    if isinstance(sched, Rolling | AfterEvent):
        return []
    if isinstance(sched, Once):
        return [Period(str(year), sched.kickoff, sched.due)]
    if isinstance(sched, Checkpoints):
        out, start = [], campaign.starts
        for day in sched.dates:
            if day >= campaign.starts:
                out.append(Period(day.isoformat(), start, day))
                start = day + dt.timedelta(days=1)
        return out
    assert isinstance(sched, Periodic)
    starts = max(sched.starts or campaign.starts, campaign.starts)
    if sched.kind == "yearly":
        bounds = [(str(year), dt.date(year, 1, 1), dt.date(year, 12, 31))]
    elif sched.kind == "half_yearly":
        bounds = [
            (f"{year}-H1", dt.date(year, 1, 1), dt.date(year, 6, 30)),
            (f"{year}-H2", dt.date(year, 7, 1), dt.date(year, 12, 31)),
        ]
    else:
        ends = [dt.date(year, 3, 31), dt.date(year, 6, 30), dt.date(year, 9, 30), dt.date(year, 12, 31)]
        bounds = [(f"{year}-Q{q + 1}", dt.date(year, 3 * q + 1, 1), ends[q]) for q in range(4)]
    return [Period(label, max(start, starts), end, start) for label, start, end in bounds if end >= starts]


def after_event_period(ob: Obligation, event_day: dt.date, cal: WorkingCalendar) -> Period:
    """An instance owed after an event: from the event's day to N working days later."""
    assert isinstance(ob.schedule, AfterEvent)
    return Period(str(event_day.year), event_day, cal.shift(event_day, ob.schedule.within_working_days))


def plan_steps(campaign: Campaign, ob: Obligation, period: Period, cal: WorkingCalendar) -> list[Step]:
    """Every notification step of one period, in date order.

    Reminders fall N working days before the due date, and on the due date itself (or the last
    working day before it); a reminder that would fall before the kickoff, or on the kickoff day, is
    dropped: the kickoff notice says everything a reminder would. Escalations start a few working
    days after the due date and repeat at an interval, up to the configured number of steps.
    """
    policy = campaign.reminder_policy(ob)
    kickoff = Step(cal.on_or_after(period.kickoff), StepKind.kickoff, "kickoff")
    by_date: dict[dt.date, Step] = {}
    for n in sorted(policy.before_due_working_days, reverse=True):
        day = cal.shift(period.due, -n)
        by_date[day] = Step(day, StepKind.reminder, f"D-{n}")
    if policy.on_due_day:
        day = cal.on_or_before(period.due)
        by_date[day] = Step(day, StepKind.reminder, "D0")  # wins over a D-1 on the same day
    steps = [kickoff] + [s for d, s in sorted(by_date.items()) if d > kickoff.date]
    if ob.escalate:
        esc = campaign.escalation
        day = period.due
        for k in range(1, esc.max_steps + 1):
            day = cal.shift(day, esc.first_after_working_days if k == 1 else esc.repeat_every_working_days)
            steps.append(Step(day, StepKind.escalation, f"E{k}"))
    return steps


@dataclass(frozen=True)
class CampaignWindow:
    """The days a dated run of the campaign may act on: from its first kickoff (or its start) to its last
    escalation plus a grace. Outside it a run would only send stale or premature notices."""

    opens: dt.date
    last_step: dt.date
    closes: dt.date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, dt.date) and self.opens <= day <= self.closes

    def outside(self, day: dt.date) -> str | None:
        """How the campaign stands on a day outside its window, as operators and bureaus are told
        (尚未开始 / 已结束); None within it."""
        if day in self:
            return None
        return "尚未开始" if day < self.opens else "已结束"


def campaign_window(campaign: Campaign, cal: WorkingCalendar | None = None) -> CampaignWindow:
    cal = cal or calendar_for(campaign)
    days = [
        step.date
        for ob in campaign.obligations
        for period in periods(campaign, ob)
        for step in plan_steps(campaign, ob, period, cal)
    ]
    opens = min([campaign.starts, *days])
    last = max([campaign.starts, *days])
    return CampaignWindow(opens, last, last + dt.timedelta(days=campaign.run_window_grace_days))


def step_label(code: str, *, detailed: bool = False) -> str:
    """How a step is named to people: in the status table (short) and the calendar preview (detailed)."""
    if code == "kickoff":
        return "启动通知（向所有责任单位）" if detailed else "启动通知"
    if code.startswith("E"):
        return f"第{code[1:]}次逾期督办（通知上级单位并抄送逾期单位）" if detailed else f"第{code[1:]}次督办"
    if code == "D0":
        return "截止日提醒"
    return f"提醒：截止前{code[2:]}个工作日" if detailed else f"截止前{code[2:]}个工作日提醒"


def current_step(steps: list[Step], today: dt.date) -> Step | None:
    """The step in force today: the latest one dated on or before it.

    A run that missed days sends only this one, never a backlog of stale reminders; outbox dedupe
    keys make sure it goes out once however often the flow runs.
    """
    current = None
    for step in steps:
        if step.date <= today:
            current = step
    return current


def working_days_left(cal: WorkingCalendar, today: dt.date, due: dt.date) -> int:
    """Working days after today, up to and including the due date: 5 on the "D-5" reminder's day, 0 on
    the due date itself and after it."""
    if today >= due:
        return 0
    count, day = 0, today + dt.timedelta(days=1)
    while day <= due:
        count += cal.is_workday(day)
        day += dt.timedelta(days=1)
    return count


def days_late(today: dt.date, due: dt.date) -> int:
    return max((today - due).days, 0)
