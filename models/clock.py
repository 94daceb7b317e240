"""The campaign's notion of "today". Flows take an optional `today` so that an operator can re-run a
day and tests can walk the calendar; every timestamp the flow writes follows that date."""

from __future__ import annotations

import datetime as dt
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
