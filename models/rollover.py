"""Next year's campaign from this year's: every date moved to the same place in the new year.

"The same place" is how the notice's dates are chosen: a month's last day stays its last day, the last
working day of a month stays the last working day, the Nth working day of a month stays the Nth; any
other day keeps its month and day. Each moved date is marked for review in the file, because only next
year's notice can confirm it. Pure text in, text out: the caller reads and writes the files.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

import holidays as holiday_rules

from models.workdays import WorkingCalendar, statutory_workday

DATE = re.compile(r"\b(20\d\d)-(\d\d)-(\d\d)\b")
REVIEW_MARK = "待审核"


def _working_days_of_month(cal: WorkingCalendar, year: int, month: int) -> list[dt.date]:
    last = calendar.monthrange(year, month)[1]
    days = (dt.date(year, month, d) for d in range(1, last + 1))
    return [d for d in days if cal.is_workday(d)]


def move_date(day: dt.date, years: int, old: WorkingCalendar, new: WorkingCalendar) -> dt.date:
    """`day` moved `years` years on, to the same place in its month (see the module's docstring)."""
    year, month = day.year + years, day.month
    last = calendar.monthrange(year, month)[1]
    if day.day == calendar.monthrange(day.year, month)[1]:
        return dt.date(year, month, last)
    old_days = _working_days_of_month(old, day.year, month)
    new_days = _working_days_of_month(new, year, month)
    if day in old_days and new_days:
        if day == old_days[-1]:
            return new_days[-1]
        return new_days[min(old_days.index(day), len(new_days) - 1)]
    return dt.date(year, month, min(day.day, last))


@dataclass(frozen=True)
class YearHolidays:
    """A year's rest days and make-up working days (调休) as far as a maintained library knows them."""

    year: int
    source: str  # "chinese-calendar" (the lists stay empty: read at run time), "holidays", "holidays-partial"
    holidays: tuple[dt.date, ...] = ()
    makeup_workdays: tuple[dt.date, ...] = ()

    @property
    def makeup_known(self) -> bool:
        return self.source != "holidays-partial"


def year_holidays(year: int) -> YearHolidays:
    if statutory_workday(dt.date(year, 10, 1)) is not None:  # chinese-calendar knows the year
        return YearHolidays(year, "chinese-calendar")
    rules = holiday_rules.China(years=year)
    rest = tuple(sorted(rules))
    makeup = tuple(sorted(d for d in rules.weekend_workdays if d.year == year))
    # The State Council publishes the year's arrangement in the autumn before; until then the statutory
    # days are known by rule, and the make-up working days are not.
    return YearHolidays(year, "holidays" if makeup else "holidays-partial", rest, makeup)


def _date_list(days: tuple[dt.date, ...]) -> str:
    return "[" + ", ".join(d.isoformat() for d in days) + "]"


def roll_campaign(text: str, old_year: int, new_year: int, old: WorkingCalendar, new: WorkingCalendar) -> str:
    """The campaign file `text` of `old_year` rewritten for `new_year`."""
    years = new_year - old_year
    out: list[str] = []
    in_working_days = False
    for line in text.splitlines():
        moved: list[str] = []
        if in_working_days and line.startswith((" ", "\t")):
            continue  # the old year's lists: written afresh below
        in_working_days = False

        def repl(match: re.Match[str], moved: list[str] = moved) -> str:
            day = dt.date(int(match[1]), int(match[2]), int(match[3]))
            new_day = move_date(day, years, old, new)
            moved.append(day.isoformat())
            return new_day.isoformat()

        stripped = line.lstrip()
        if stripped.startswith("draft:"):
            continue  # written afresh below
        if stripped.startswith("#"):
            out.append(line.replace(str(old_year), str(new_year)) if "campaign of" not in line else line)
            continue
        line = DATE.sub(repl, line)
        if stripped.startswith("year:"):
            line = line.replace(str(old_year), str(new_year))
        else:
            line = line.replace(f"{old_year}年", f"{new_year}年")
        if stripped.startswith("notice:"):
            indent = line[: len(line) - len(stripped)]
            line = f"{indent}notice: {REVIEW_MARK}：{new_year}年度通知文号（{old_year}年度为 {stripped[7:].strip()}）"
        if moved:
            line += f"  # {REVIEW_MARK}：由 {'、'.join(moved)} 顺延"
        elif stripped.startswith("quotas:") or "示意" in line:
            line += f"  # {REVIEW_MARK}：沿用 {old_year} 年度的值"
        out.append(line)
        if stripped.startswith("working_days:"):
            out.append(working_days_block(year_holidays(new_year)))
            in_working_days = True
        if stripped.startswith("year:"):
            out.append(f"draft: true  # {REVIEW_MARK}：核对全部标有“{REVIEW_MARK}”的值后删除此行")
    header = (
        f"# 由 `campaign new-year {new_year}` 自 {old_year}.yaml 生成：日期已顺延到新年度的相同位置（月末仍为月末，"
        f"月内最后一个工作日仍为最后一个工作日）。\n# 标有“{REVIEW_MARK}”的值须按 {new_year} 年度通知核对；"
        "`campaign check` 在核对完成前会提示。\n"
    )
    return header + "\n".join(out) + "\n"


def working_days_block(found: YearHolidays, indent: str = "  ") -> str:
    """The `working_days:` section's lists for a year, with where they came from."""
    lines = [f"{indent}source: {found.source}"]
    if found.source == "chinese-calendar":
        lines += [f"{indent}holidays: []", f"{indent}makeup_workdays: []"]
    else:
        lines += [
            f"{indent}holidays: {_date_list(found.holidays)}",
            f"{indent}makeup_workdays: {_date_list(found.makeup_workdays)}",
        ]
    lines.append(f"{indent}makeup_workdays_known: {'true' if found.makeup_known else 'false'}")
    return "\n".join(lines)
