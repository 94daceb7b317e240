"""The one way to read a submitted file's identity: which unit sent it, for which obligation and period,
and whether it can be accepted. Pure: the caller has hashed and sized the file.

Inbox layout (the README shows it to bureaus): `<inbox>/<obligation key>/<file>`, the file name
starting with the unit's name or its code, e.g. `june_survey/南关区-调研材料.pdf` or
`standards_filing/220102_标准备案.pdf`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from config.schema import LEVEL_LABELS, Campaign, Obligation, Unit
from models.deadlines import Period, periods
from models.planning import owes


@dataclass(frozen=True)
class Screened:
    unit: Unit | None
    period: Period | None
    reason: str | None  # None: accepted

    @property
    def accepted(self) -> bool:
        return self.reason is None


def identify_unit(file_name: str, units: list[Unit]) -> Unit | None:
    """The unit a file name starts with: a code (current or former) or the longest matching name."""
    stem = file_name.strip()
    match = re.match(r"^(\d{6}|[A-Z]{2}-[A-Z0-9]+)(?![0-9A-Za-z])", stem)
    if match:
        code = match.group(1)
        for unit in units:
            if unit.key == code or code in unit.former_codes:
                return unit
        return None
    best: Unit | None = None
    for unit in units:
        for name in (unit.name, unit.bureau):
            if stem.startswith(name) and (best is None or len(name) > len(best.name)):
                best = unit
    return best


def period_for(campaign: Campaign, ob: Obligation, day: dt.date) -> Period | None:
    """The period a submission made on `day` counts for: the one running, else the last one past."""
    candidates = periods(campaign, ob)
    for period in candidates:
        if period.kickoff <= day <= period.due:
            return period
    past = [p for p in candidates if p.due < day]
    if past:
        return past[-1]
    return candidates[0] if candidates else None


def screen(
    *,
    file_name: str,
    size: int,
    campaign: Campaign,
    ob: Obligation,
    units: list[Unit],
    day: dt.date,
    unit: Unit | None = None,
) -> Screened:
    """Accept or refuse one file, with the reason in the words the sending bureau will read.

    `unit` is given when the sender is known (an operator's record); otherwise the file name says it.
    """
    ext = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    unit = unit or identify_unit(file_name, units)
    if unit is None:
        return Screened(
            None,
            None,
            "无法从文件名识别报送单位：文件名须以单位名称或行政区划代码开头，例如“南关区-调研材料.pdf”",
        )
    if ext not in campaign.accepted_extensions:
        allowed = "、".join(campaign.accepted_extensions)
        return Screened(unit, None, f"文件类型“.{ext}”不予受理（可受理：{allowed}）")
    if size == 0:
        return Screened(unit, None, "文件为空（0 字节）")
    limit_mb = campaign.intake_limits.max_file_mb
    if size > limit_mb * (1 << 20):
        return Screened(
            unit, None, f"文件过大（{size / (1 << 20):.1f} MB，上限 {limit_mb:g} MB），请压缩或拆分后报送"
        )
    if not owes(ob, unit):
        levels = "、".join(LEVEL_LABELS[level] for level in ob.owed_by)
        return Screened(unit, None, f"“{ob.title}”由{levels}单位报送，{unit.name}无需报送此项")
    period = period_for(campaign, ob, day)
    if period is None:
        return Screened(unit, None, f"“{ob.title}”没有需要报送的期次")
    return Screened(unit, period, None)
