"""The flow registry: the one place that declares each flow of the campaign.

The CLI (`campaign run NAME`), `campaign serve` (one deployment per flow, scheduled by its kind) and
config validation (an obligation's `flow:` must name a dated flow here) all read this table. Which
obligations a dated flow runs is campaign data: those whose `flow:` names it (`obligations_for`).

Plain data, no Prefect: config is the bottom layer. `flows/registry.py` turns a target into the flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from config.schema import Campaign, Rolling


class ScheduleKind(StrEnum):
    calendar = "calendar"  # every day from its obligations' first kickoff to their last escalation
    working_days = "working_days"  # every working day of the campaign (the rolling pool intake)
    half_hourly = "half_hourly"  # office hours, every half hour (delivery retries)
    form = "form"  # no schedule: an operator fills its form in the UI


@dataclass(frozen=True)
class FlowSpec:
    name: str  # the Prefect flow's name, the CLI's FLOW and the YAML's `flow:` value
    title: str  # what operators call it: deployment and run names (short: the UI's lists cut at ~18)
    target: str  # "module:function"
    schedule: ScheduleKind
    approval: bool = False  # pauses for an operator's form; a CLI run passes approve=False
    takes_today: bool = True  # has a `today` parameter (the business date)
    named_by: str | None = None  # a form's parameter whose value follows the title in its runs' names

    @property
    def dated(self) -> bool:
        """Runs obligations named by `flow:` in the campaign file."""
        return self.schedule in (ScheduleKind.calendar, ScheduleKind.working_days)


FLOWS: tuple[FlowSpec, ...] = (
    FlowSpec("june_survey", "三(一)实地调研", "flows.june:june_survey", ScheduleKind.calendar),
    FlowSpec("standards_filing", "三(二)标准备案", "flows.june:standards_filing", ScheduleKind.calendar),
    FlowSpec(
        "pool_intake", "三(三)培育库入库", "flows.pool:pool_intake", ScheduleKind.working_days, approval=True
    ),
    FlowSpec("quarterly_visits", "三(四)季度走访", "flows.services:quarterly_visits", ScheduleKind.calendar),
    FlowSpec(
        "half_year_training", "三(四)农技工培训", "flows.services:half_year_training", ScheduleKind.calendar
    ),
    FlowSpec("funds_tracking", "三(五)资金管理", "flows.services:funds_tracking", ScheduleKind.calendar),
    FlowSpec(
        "october_review",
        "三(六)评审认定",
        "flows.review:october_review",
        ScheduleKind.calendar,
        approval=True,
    ),
    FlowSpec(
        "annual_assessment", "四(三)年度考核", "flows.assessment:annual_assessment", ScheduleKind.calendar
    ),
    FlowSpec("publicity", "四(四)典型经验", "flows.publicity:publicity", ScheduleKind.calendar),
    FlowSpec(
        "deliver_notifications",
        "通知投递与重发",
        "flows.operations:deliver_notifications",
        ScheduleKind.half_hourly,
        takes_today=False,
    ),
    FlowSpec("record_submission", "登记线下报送", "flows.submission:record_submission", ScheduleKind.form),
    FlowSpec(
        "assign_leaders",
        "三(四)确定包保领导",
        "flows.services:assign_leaders",
        ScheduleKind.form,
        named_by="operator",
    ),
    FlowSpec(
        "record_services",
        "三(四)登记三送服务",
        "flows.services:record_services",
        ScheduleKind.form,
        named_by="sender",
    ),
    FlowSpec(
        "exchange_meeting",
        "四(四)三送交流会",
        "flows.publicity:exchange_meeting",
        ScheduleKind.form,
        named_by="operator",
    ),
)
BY_NAME = {spec.name: spec for spec in FLOWS}
# A dated flow's place in the calendar ("01" … "09"), before its title in the deployment's name: the UI
# sorts names by code point, where 三(三) comes before 三(二) and 四(四) before 四(三).
STEP = {spec.name: n for n, spec in enumerate((s for s in FLOWS if s.dated), start=1)}
DATED = tuple(spec.name for spec in FLOWS if spec.dated)
RUNNABLE = tuple(spec.name for spec in FLOWS if spec.schedule is not ScheduleKind.form)  # `campaign run`


def obligations_for(campaign: Campaign, flow_name: str) -> list[str]:
    """The dated obligations a flow reminds and escalates: those whose `flow:` names it, in file order."""
    return [
        ob.key for ob in campaign.obligations if ob.flow == flow_name and not isinstance(ob.schedule, Rolling)
    ]
