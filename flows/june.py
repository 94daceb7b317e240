"""June: the field survey (三(一)) and the standards filing (三(二), 四(二)), both due 06-30."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from flows.dated import refuses_calmly, run_namer
from flows.deadlines import deadline_cycle
from tasks.standards import OBLIGATION, standards_intake


@flow(
    name="june_survey",
    flow_run_name=run_namer("june_survey"),
    description="三(一) 组织开展调研：收取各市县调研材料（问题清单、任务清单、实施方案），按期提醒、逾期督办。",
)
@refuses_calmly
def june_survey(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    """The field survey's kickoff, intake, reminders and escalation for `today` (default: today)."""
    return deadline_cycle("june_survey", today, dry_run=dry_run, campaign_year=campaign_year)


@flow(
    name="standards_filing",
    flow_run_name=run_namer("standards_filing"),
    description="三(二)、四(二) 制定建设标准并备案：收取市县两级基地建设标准、认定条件和培育库入库标准，按期提醒、逾期督办；"
    "各单位报送的入库标准表经校验接收后，即作为该单位培育库的入库条件。",
)
@refuses_calmly
def standards_filing(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    """The standards filing's kickoff, intake, reminders and escalation for `today` (default: today).
    The documents settle the obligation; each 入库标准表 becomes its unit's admission bar."""
    return deadline_cycle(
        "standards_filing",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
        sheets=[standards_intake],
        file_obligations=[OBLIGATION],
    )
