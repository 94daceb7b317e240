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
from config.errors import SubmissionError
from config.settings import get_settings
from flows.dated import refuses_calmly, run_namer
from flows.deadlines import deadline_cycle
from models.clock import local_today, moment
from models.db import session_scope
from models.submissions import identify_unit
from tasks.audit import audited
from tasks.delivery import deliver_all
from tasks.funds import fund_intake
from tasks.inbox import tell_refusals
from tasks.records import services_of
from tasks.services import publish_services, update_progress
from tasks.sheets import brief, sheet_from_form, take_in_sheet
from tasks.sync import sync_campaign
from tasks.trainings import training_intake
from tasks.visits import ASSIGNMENT, VISITS, assign_leader, posting_intake, project_names, visit_intake


@flow(
    name="quarterly_visits",
    flow_run_name=run_namer("quarterly_visits"),
    description="三(四) 推荐项目包保与每季度走访：为推荐上级的项目明确本级主要领导包保，收取走访记录与招聘发布记录，"
    "季度末前按工作日提醒、逾期向上级督办，按季度、市州和需求类别汇总走访收集的需求。",
)
@refuses_calmly
def quarterly_visits(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    """包保 within N working days of a recommendation; a visit per project per quarter; job postings."""
    return deadline_cycle(
        "quarterly_visits",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
        sheets=[visit_intake, posting_intake],
        progress=lambda cfg, day: update_progress(cfg, day, ["projects"]),
        publish=lambda cfg, day: publish_services(cfg, day, ["projects"]),
    )


def _training_keys(cfg: CampaignConfig) -> list[str]:
    return list(dict.fromkeys(services_of(cfg).training_kinds.values()))


@flow(
    name="half_year_training",
    flow_run_name=run_namer("half_year_training"),
    description="三(四) 市县创业人员培训（每半年一期）与同类项目农技人员培训（市级每年不少于2次、县级不少于1次）："
    "收取培训记录，按各单位应办次数统计进度，半年末和年末前提醒、逾期督办。",
)
@refuses_calmly
def half_year_training(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    """Training records in; each unit's count per half-year and year against its target."""
    return deadline_cycle(
        "half_year_training",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
        sheets=[training_intake],
        progress=lambda cfg, day: update_progress(cfg, day, ["trainings"]),
        publish=lambda cfg, day: publish_services(cfg, day, []),
    )


@flow(
    name="funds_tracking",
    flow_run_name=run_namer("funds_tracking"),
    description="三(五) 资金到位率、执行率 100%：收取各地资金台账，按节点核算到位率和执行率并提醒、督办；"
    "省级专项资金用于可用范围以外即作为挪用立即报告省厅；市级基地补助未与省级同步发放的予以预警。",
)
@refuses_calmly
def funds_tracking(
    today: dt.date | None = None, dry_run: bool = False, campaign_year: int | None = None
) -> dict[str, Any]:
    """Fund ledgers in; rates against each checkpoint's targets; diversion and out-of-step flags."""
    return deadline_cycle(
        "funds_tracking",
        today,
        dry_run=dry_run,
        campaign_year=campaign_year,
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
    flow_run_name=run_namer("assign_leaders"),
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
        counts["published"] = publish_services(cfg, today, ["projects"])
    return counts


class VisitEntry(BaseModel):
    project_id: int = Field(
        title="项目编号",
        description="培育库项目编号（见 pool-county/pool-city/pool-province 或 leaders-pending）",
    )
    visited_on: dt.date = Field(title="走访日期")
    leader_name: str = Field(title="走访领导", min_length=1)
    leader_title: str = Field(default="", title="领导职务")
    visiting_unit: str = Field(default="", title="走访单位", description="单位名称或代码；留空即报送单位")
    findings: str = Field(default="", title="走访情况")
    need_categories: list[str] = Field(
        default_factory=list,
        title="需求类别",
        description="经营管理、产品研发、品牌打造、包装推介、销售渠道，可多项",
    )
    needs: str = Field(default="", title="需求描述")
    services: str = Field(default="", title="已提供服务")


class TrainingEntry(BaseModel):
    unit: str = Field(title="举办单位", description="单位名称或代码")
    kind: str = Field(title="培训类别", description="创业者培训 或 农技人员培训")
    held_on: dt.date = Field(title="培训日期")
    topic: str = Field(title="培训主题", min_length=1)
    attendees: int = Field(title="参训人数", ge=0)
    linked_projects: str = Field(default="", title="关联项目", description="培育库项目名称，多个以“、”分隔")
    note: str = Field(default="", title="备注")


@flow(
    name="record_services",
    flow_run_name=run_namer("record_services"),
    description="三(四) 登记走访与培训：省级经办人代报送单位登记通过电话、邮件或纸质材料收到的走访记录和培训记录，"
    "与报表按同样的规则逐行校验；有误的行连同原因通知报送单位，其余照常登记。",
)
def record_services(
    sender: str,
    operator: str,
    visits: list[VisitEntry] | None = None,
    trainings: list[TrainingEntry] | None = None,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """Form entries become the sheets a bureau would have sent, and go through the same intake."""
    cfg = load_config()
    today = today or local_today(cfg.campaign)
    unit = identify_unit(sender, list(cfg.units))
    if unit is None:
        raise SubmissionError(sender, "未知的报送单位（请填写单位名称或行政区划代码）")
    folder = get_settings().reports / str(cfg.campaign.year) / "forms"
    received_at = moment(today, cfg.campaign)
    with audited("record_services", {"sender": unit.key, "operator": operator}) as counts:
        sync_campaign(cfg, [ASSIGNMENT, VISITS, *_training_keys(cfg)])
        if visits:
            with session_scope() as session:
                names = project_names(session, cfg, [v.project_id for v in visits])
            rows = [
                {
                    "项目名称": names.get(v.project_id, (f"编号 {v.project_id}", ""))[0],
                    "统一社会信用代码": names.get(v.project_id, ("", ""))[1],
                    "走访日期": v.visited_on.isoformat(),
                    "走访领导": v.leader_name,
                    "领导职务": v.leader_title,
                    "走访单位": v.visiting_unit,
                    "走访情况": v.findings,
                    "需求类别": "、".join(v.need_categories),
                    "需求描述": v.needs,
                    "已提供服务": v.services,
                }
                for v in visits
            ]
            intake = visit_intake(cfg)
            path = sheet_from_form(folder, unit, intake.sheet, rows)
            counts["visits"] = brief(take_in_sheet(cfg, intake, path, received_at, sender=unit))
        if trainings:
            rows = [
                {
                    "举办单位": t.unit,
                    "培训类别": t.kind,
                    "培训日期": t.held_on.isoformat(),
                    "培训主题": t.topic,
                    "参训人数": str(t.attendees),
                    "关联项目": t.linked_projects,
                    "备注": t.note,
                }
                for t in trainings
            ]
            intake = training_intake(cfg)
            path = sheet_from_form(folder, unit, intake.sheet, rows)
            counts["trainings"] = brief(take_in_sheet(cfg, intake, path, received_at, sender=unit))
        tell_refusals(cfg)
        counts["progress"] = update_progress(cfg, today, ["projects", "trainings"])
        counts["delivery"] = deliver_all(cfg.campaign)
    return counts
