"""四(三) The year-end target assessment: income reports taken in, every city scored with its counties'
shares, the workbook, charts and artifacts published, and each city sent its scorecard once final."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow

from config import CampaignConfig
from flows.dated import refuses_calmly, run_namer
from flows.deadlines import deadline_cycle
from tasks.assessment import assess, income_intake, income_progress


@flow(
    name="annual_assessment",
    flow_run_name=run_namer("annual_assessment"),
    description="四(三) 年度目标责任考核：收取各地增收情况表；按市州（含所属县（市、区）分解指标）计算数量、质量、"
    "社会效益、经济效益、资金到位和执行（含因素法下达资金）、服务基地和宣传报道得分与排名，生成考核表和图表；"
    "考核截止日起向各市州发送本地评分卡。",
)
@refuses_calmly
def annual_assessment(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    def progress(cfg: CampaignConfig, day: dt.date) -> dict[str, Any]:
        # Assessed before reminders and delivery: the scorecards go out in this run, and the
        # province's obligation shows as met in this run's status.
        return {"income": income_progress(cfg, day), "assessment": assess(cfg, day)}

    return deadline_cycle(
        "annual_assessment",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
        sheets=[income_intake],
        progress=progress,
    )
