"""The campaign's one clock. Flows take an optional business date (`today`) so that an operator can
re-run a day and tests can walk the calendar; while a run acts as of that date, every "now" it records
(receipts, approvals, queued messages, its audit row) is that date's moment in the campaign's timezone,
so a replayed year writes the same rows as the live one.

Only what really happens at a wall-clock time keeps the wall clock: delivery attempts and their
back-off, a platform's signature timestamp, a mail's Date header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from zoneinfo import ZoneInfo

from config.schema import Campaign


def local_today(campaign: Campaign) -> dt.date:
    return dt.datetime.now(ZoneInfo(campaign.timezone)).date()


def moment(day: dt.date, campaign: Campaign) -> dt.datetime:
    """Now, if `day` is today; otherwise `day` at the campaign's send time, as an aware UTC datetime."""
    tz = ZoneInfo(campaign.timezone)
    now = dt.datetime.now(tz)
    if now.date() == day:
        return now.astimezone(dt.UTC)
    return dt.datetime.combine(day, campaign.send_time, tzinfo=tz).astimezone(dt.UTC)


def local_date(value: dt.datetime, campaign: Campaign) -> dt.date:
    return value.astimezone(ZoneInfo(campaign.timezone)).date()


_business_moment: ContextVar[dt.datetime | None] = ContextVar("business_moment", default=None)


def now() -> dt.datetime:
    """The moment a record is written as of: the run's business moment while one is set, else the wall
    clock (aware, UTC)."""
    return _business_moment.get() or dt.datetime.now(dt.UTC)


@contextmanager
def business_day(day: dt.date, campaign: Campaign) -> Iterator[dt.datetime]:
    """For this block (and the tasks it calls), `now()` is `moment(day, campaign)`."""
    token = _business_moment.set(moment(day, campaign))
    try:
        yield moment(day, campaign)
    finally:
        _business_moment.reset(token)
