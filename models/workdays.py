"""Working days in mainland China, with statutory holidays and make-up working days (调休).

chinese-calendar knows each year once the State Council has published its holiday arrangement. For a
year it does not know yet (it raises NotImplementedError), one warning is logged and the campaign's own
lists are used: weekends rest, plus `working_days.holidays`, minus `working_days.makeup_workdays`. A
scheduled run never crashes on a year the library has not caught up with.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from functools import lru_cache

import chinese_calendar

log = logging.getLogger(__name__)
_warned_years: set[int] = set()


class WorkingCalendar:
    def __init__(self, holidays: Iterable[dt.date] = (), makeup_workdays: Iterable[dt.date] = ()) -> None:
        self._holidays = frozenset(holidays)
        self._makeup = frozenset(makeup_workdays)

    def is_workday(self, day: dt.date) -> bool:
        if day in self._makeup:
            return True
        if day in self._holidays:
            return False
        statutory = statutory_workday(day)
        if statutory is None:
            if day.year not in _warned_years:
                _warned_years.add(day.year)
                log.warning(
                    "chinese-calendar has no holiday data for %s: using weekends plus the campaign "
                    "config's working_days lists for that year",
                    day.year,
                )
            return day.weekday() < 5
        return statutory

    def shift(self, day: dt.date, working_days: int) -> dt.date:
        """The date `working_days` working days after `day` (before it, if negative), not counting `day`."""
        step = 1 if working_days >= 0 else -1
        remaining = abs(working_days)
        while remaining:
            day += dt.timedelta(days=step)
            if self.is_workday(day):
                remaining -= 1
        return day

    def on_or_before(self, day: dt.date) -> dt.date:
        while not self.is_workday(day):
            day -= dt.timedelta(days=1)
        return day

    def on_or_after(self, day: dt.date) -> dt.date:
        while not self.is_workday(day):
            day += dt.timedelta(days=1)
        return day


@lru_cache(maxsize=4096)
def statutory_workday(day: dt.date) -> bool | None:
    """chinese-calendar's answer, or None for a year it does not know. Cached: the library scans its
    whole holiday table on every call, and deadlines ask about the same days thousands of times."""
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        return None
