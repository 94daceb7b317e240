"""The whole year's planned notification dates, from config alone (the Prefect server only shows
scheduled runs 100 days ahead)."""

from __future__ import annotations

from typing import Any

from config import CampaignConfig
from config.schema import AfterEvent
from models.deadlines import calendar_for, periods, plan_steps, step_label

EVENTS = {"recommendation_approved": "项目经评审命名并推荐上级"}


def preview_rows(cfg: CampaignConfig) -> list[dict[str, Any]]:
    cal = calendar_for(cfg.campaign)
    rows: list[dict[str, Any]] = []
    for ob in cfg.campaign.obligations:
        obligation_periods = periods(cfg.campaign, ob)
        if isinstance(ob.schedule, AfterEvent):
            rows.append(
                {
                    "obligation": ob.key,
                    "period": "逐项",
                    "date": cfg.campaign.starts,
                    "kind": "rolling",
                    "code": "",
                    "label": f"{EVENTS[ob.schedule.event]}后 {ob.schedule.within_working_days} 个工作日内完成；"
                    "到期提醒，次一工作日起逾期督办（按项目逐项计算）",
                }
            )
        elif not obligation_periods:
            rows.append(
                {
                    "obligation": ob.key,
                    "period": "全年",
                    "date": cfg.campaign.starts,
                    "kind": "rolling",
                    "code": "",
                    "label": "全年滚动，不设截止日期，不发提醒",
                }
            )
        for period in obligation_periods:
            for step in plan_steps(cfg.campaign, ob, period, cal):
                rows.append(
                    {
                        "obligation": ob.key,
                        "period": period.label,
                        "date": step.date,
                        "kind": step.kind.value,
                        "code": step.code,
                        "label": step_label(step.code, detailed=True),
                    }
                )
            rows.append(
                {
                    "obligation": ob.key,
                    "period": period.label,
                    "date": period.due,
                    "kind": "due",
                    "code": "due",
                    "label": "截止日期",
                }
            )
    # Per obligation and period (config order), by date; the due date after that day's reminder.
    order = {"rolling": 0, "kickoff": 0, "reminder": 1, "due": 2, "escalation": 3}
    position = {ob.key: i for i, ob in enumerate(cfg.campaign.obligations)}
    rows.sort(key=lambda r: (position[r["obligation"]], r["period"], r["date"], order[r["kind"]]))
    return rows
