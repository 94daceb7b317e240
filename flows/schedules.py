"""Calendar schedules, computed from the campaign config: each dated flow runs every day at the
campaign's send time from its first kickoff to its last escalation. The flows themselves decide what
a day calls for, so a run on a rest day only takes in files and retries deliveries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefect.schedules import Cron, RRule, Schedule

from config import CampaignConfig
from config.schema import AfterEvent
from models.deadlines import after_event_period, calendar_for, periods, plan_steps


@dataclass(frozen=True)
class Window:
    first: dt.date
    last: dt.date


def flow_windows(cfg: CampaignConfig) -> dict[str, Window]:
    """For each flow named in the config: the first and last date any of its obligations has a step.

    An obligation without periods of its own may need the flow any day of the campaign: a rolling one
    to the year's end, one owed after an event (a project's approval) to the last step of an event on
    the year's last day.
    """
    cal = calendar_for(cfg.campaign)
    windows: dict[str, Window] = {}
    year_end = dt.date(cfg.campaign.year, 12, 31)
    for ob in cfg.campaign.obligations:
        if not ob.flow:
            continue
        owed = periods(cfg.campaign, ob)
        if isinstance(ob.schedule, AfterEvent):
            owed = [after_event_period(ob, year_end, cal)]
        dates = [s.date for p in owed for s in plan_steps(cfg.campaign, ob, p, cal)]
        if not periods(cfg.campaign, ob):
            dates += [cfg.campaign.starts, year_end]
        old = windows.get(ob.flow)
        first, last = min(dates), max(dates)
        windows[ob.flow] = Window(min(first, old.first), max(last, old.last)) if old else Window(first, last)
    return windows


def daily_schedule(cfg: CampaignConfig, flow_name: str) -> Schedule | None:
    window = flow_windows(cfg).get(flow_name)
    if window is None:
        return None
    t = cfg.campaign.send_time
    start = dt.datetime.combine(window.first, t)
    until = dt.datetime.combine(window.last, t)
    return RRule(
        f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=DAILY;UNTIL={until:%Y%m%dT%H%M%S}",
        timezone=cfg.campaign.timezone,
    )


def delivery_schedule(cfg: CampaignConfig) -> Schedule:
    """Retry queued deliveries every half hour in office hours."""
    return Cron("*/30 8-18 * * *", timezone=cfg.campaign.timezone)


def working_day_schedule(cfg: CampaignConfig) -> Schedule:
    """Every working day (statutory holidays off, make-up days on) from the campaign start to year end."""
    cal = calendar_for(cfg.campaign)
    first = cfg.campaign.starts
    last = dt.date(cfg.campaign.year, 12, 31)
    t = cfg.campaign.send_time
    off, on = [], []
    day = first
    while day <= last:
        weekday = day.weekday() < 5
        if weekday and not cal.is_workday(day):
            off.append(dt.datetime.combine(day, t))
        elif not weekday and cal.is_workday(day):
            on.append(dt.datetime.combine(day, t))
        day += dt.timedelta(days=1)
    start, until = dt.datetime.combine(first, t), dt.datetime.combine(last, t)
    lines = [
        f"DTSTART:{start:%Y%m%dT%H%M%S}",
        f"RRULE:FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;UNTIL={until:%Y%m%dT%H%M%S}",
    ]
    if on:
        lines.append("RDATE:" + ",".join(f"{d:%Y%m%dT%H%M%S}" for d in on))
    if off:
        lines.append("EXDATE:" + ",".join(f"{d:%Y%m%dT%H%M%S}" for d in off))
    return RRule("\n".join(lines), timezone=cfg.campaign.timezone)
