"""四(四) Publicity: each city's typical bases and experience article, and the exchange meeting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from pydantic import BaseModel, Field

from config import load_config
from config.errors import SubmissionError
from flows.dated import refuses_calmly, run_namer
from flows.deadlines import deadline_cycle
from models.clock import local_today
from models.submissions import identify_unit
from tasks.audit import audited
from tasks.delivery import deliver_all
from tasks.publicity import pick_presenters, publicity_intake, publicity_of, publicity_progress
from tasks.sync import sync_campaign


@flow(
    name="publicity",
    flow_run_name=run_namer("publicity"),
    description="四(四) 宣传引导：各市州年度内选树 2 个创业基地优秀典型、总结 1 篇经验材料；收取宣传报道记录表，"
    "按市州统计完成情况，年末前提醒、逾期督办。",
)
@refuses_calmly
def publicity(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    return deadline_cycle(
        "publicity",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
        sheets=[publicity_intake],
        progress=publicity_progress,
    )


class MeetingPlan(BaseModel):
    meeting_on: dt.date = Field(title="会议日期")
    place: str = Field(title="会议地点", min_length=1)
    presenters: list[str] = Field(
        title="发言单位", min_length=1, description="市（州）或县（市、区）名称或行政区划代码，每行一个"
    )
    topic: str = Field(default="", title="发言主题")


@flow(
    name="exchange_meeting",
    flow_run_name=run_namer("exchange_meeting"),
    description="四(四) “三送”服务经验交流会：省级经办人选定作经验介绍的市（县），系统登记并通知各发言单位。",
)
def exchange_meeting(meeting: MeetingPlan, operator: str, today: dt.date | None = None) -> dict[str, Any]:
    """The presenters are unit names or codes. An unknown one is reported; the others are picked and told."""
    log = get_run_logger()
    cfg = load_config()
    today = today or local_today(cfg.campaign)
    units, unknown = [], []
    for name in meeting.presenters:
        unit = identify_unit(name, list(cfg.units))
        if unit is None:
            unknown.append(name)
        else:
            units.append(unit)
    if not units:
        raise SubmissionError(
            ", ".join(meeting.presenters), "没有可识别的发言单位（请填写单位名称或行政区划代码）"
        )
    with audited("exchange_meeting", {"meeting_on": meeting.meeting_on, "operator": operator}) as counts:
        sync_campaign(cfg, [publicity_of(cfg).exchange_obligation])
        for name in unknown:
            log.error("未知的单位：%s（已忽略，其余单位照常登记）", name)
        counts.update(
            pick_presenters(
                cfg,
                units,
                meeting_on=meeting.meeting_on,
                place=meeting.place,
                topic=meeting.topic,
                picked_by=operator,
                today=today,
            )
        )
        counts["unknown"] = unknown
        counts["delivery"] = deliver_all(cfg.campaign)
    return counts
