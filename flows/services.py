"""三(四) 三送 services and 三(五) funds, all year: 包保 and quarterly visits, trainings, funds.

Each is the deadline cycle (flows/deadlines.py) with its obligations, the sheets bureaus send for
them, and the task that turns what was recorded into progress. Served to run every day of their
calendar window: a day without a step only takes in sheets and updates progress.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from pydantic import BaseModel, Field

from config import CampaignConfig, load_config
from flows.deadlines import deadline_cycle
from models.clock import local_today
from models.errors import SubmissionError
from tasks.audit import audited
from tasks.services import (
    ASSIGNMENT,
    FUNDS,
    VISITS,
    assign_leader,
    fund_intake,
    posting_intake,
    publish_services,
    services_of,
    training_intake,
    update_progress,
    visit_intake,
)


@flow(
    name="quarterly_visits",
    flow_run_name="quarterly-visits-{today}",
    description="三(四) 推荐项目包保与每季度走访：为推荐上级的项目明确本级主要领导包保，收取走访记录与招聘发布记录，"
    "季度末前按工作日提醒、逾期向上级督办，按季度、市州和需求类别汇总走访收集的需求。",
)
def quarterly_visits(today: dt.date | None = None) -> dict[str, Any]:
    """包保 within N working days of a recommendation; a visit per project per quarter; job postings."""
    return deadline_cycle(
        "quarterly_visits",
        [ASSIGNMENT, VISITS],
        today,
        sheets=[visit_intake, posting_intake],
        progress=lambda cfg, day: update_progress(cfg, day, ["projects"]),
        publish=lambda cfg, day: publish_services(cfg, day, ["needs"]),
    )


def _training_keys(cfg: CampaignConfig) -> list[str]:
    return list(dict.fromkeys(services_of(cfg).training_kinds.values()))


@flow(
    name="half_year_training",
    flow_run_name="half-year-training-{today}",
    description="三(四) 市县创业人员培训（每半年一期）与同类项目农技人员培训（市级每年不少于2次、县级不少于1次）："
    "收取培训记录，按各单位应办次数统计进度，半年末和年末前提醒、逾期督办。",
)
def half_year_training(today: dt.date | None = None) -> dict[str, Any]:
    """Training records in; each unit's count per half-year and year against its target."""
    return deadline_cycle(
        "half_year_training",
        _training_keys(load_config()),
        today,
        sheets=[training_intake],
        progress=lambda cfg, day: update_progress(cfg, day, ["trainings"]),
        publish=lambda cfg, day: publish_services(cfg, day, []),
    )


@flow(
    name="funds_tracking",
    flow_run_name="funds-tracking-{today}",
    description="三(五) 资金到位率、执行率 100%：收取各地资金台账，按节点核算到位率和执行率并提醒、督办；"
    "省级专项资金用于可用范围以外即作为挪用立即报告省厅；市级基地补助未与省级同步发放的予以预警。",
)
def funds_tracking(today: dt.date | None = None) -> dict[str, Any]:
    """Fund ledgers in; rates against each checkpoint's targets; diversion and out-of-step flags."""
    return deadline_cycle(
        "funds_tracking",
        [FUNDS],
        today,
        sheets=[fund_intake],
        progress=lambda cfg, day: update_progress(cfg, day, ["funds"]),
        publish=lambda cfg, day: publish_services(cfg, day, ["funds"]),
    )


class LeaderChoice(BaseModel):
    project_id: int = Field(
        title="项目编号", description="见界面 Artifacts 中的“待明确包保领导的项目”（leaders-pending）"
    )
    leader_name: str = Field(title="包保领导姓名", min_length=1)
    leader_title: str = Field(default="", title="职务")
    unit_key: str | None = Field(
        default=None, title="包保单位代码", description="仅当同一项目由县、市两级分别推荐时填写"
    )


@flow(
    name="assign_leaders",
    flow_run_name="assign-leaders-{operator}",
    description="三(四) 指定包保领导：为已推荐上级的培育库项目登记本级主要领导包保（可一次登记多项），"
    "登记后相应的包保提醒即停止，季度走访由该领导负责。",
)
def assign_leaders(
    assignments: list[LeaderChoice], operator: str, today: dt.date | None = None
) -> dict[str, Any]:
    """An operator's form: name or change 包保 leaders; a bad line is reported and the rest are kept."""
    log = get_run_logger()
    cfg = load_config()
    today = today or local_today(cfg.campaign)
    with audited("assign_leaders", {"operator": operator, "count": len(assignments)}) as counts:
        done, refused = [], []
        for choice in assignments:
            try:
                done.append(
                    assign_leader(
                        cfg,
                        application_id=choice.project_id,
                        leader_name=choice.leader_name,
                        leader_title=choice.leader_title,
                        assigned_by=operator,
                        today=today,
                        unit_key=choice.unit_key,
                    )
                )
            except SubmissionError as exc:
                refused.append({"project_id": choice.project_id, "reason": exc.reason})
                log.warning("项目 %s 未登记：%s", choice.project_id, exc.reason)
        counts["assigned"], counts["refused"] = done, refused
        counts["progress"] = update_progress(cfg, today, ["projects"])
        counts["published"] = publish_services(cfg, today, ["needs"])
    return counts
