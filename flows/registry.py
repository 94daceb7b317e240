"""The registry's flows as Prefect objects: resolve a `FlowSpec` (config/flows.py) to its flow, and the
deployments `campaign serve` offers.

Each campaign year served is its own set of dated deployments (`2022年·01 三(一)实地调研`), scheduled by
its kind and bound to its year; the form flows and the delivery, which belong to no one year, are
served once.
"""

from __future__ import annotations

import datetime as dt
import importlib
from typing import Any

from config import CampaignConfig
from config.flows import BY_NAME, FLOWS, STEP, FlowSpec, ScheduleKind
from flows.dated import PARAMETER_HELP
from flows.schedules import daily_schedule, delivery_schedule, flow_windows, working_day_schedule


def flow_of(spec: FlowSpec | str) -> Any:
    """The Prefect flow a registry entry names."""
    spec = BY_NAME[spec] if isinstance(spec, str) else spec
    module, _, function = spec.target.partition(":")
    return getattr(importlib.import_module(module), function)


def deployment_name(spec: FlowSpec, cfg: CampaignConfig) -> str:
    """`2022年·01 三(一)实地调研`: year, step and title, so that sorting A→Z gives the notice's order."""
    return f"{cfg.campaign.year}年·{STEP[spec.name]:02d} {spec.title}" if spec.dated else spec.title


def _schedule_text(spec: FlowSpec, cfg: CampaignConfig) -> str:
    """The schedule as an operator reads it (the UI shows the raw RRULE)."""
    t = f"{cfg.campaign.send_time:%H:%M}"
    if spec.schedule is ScheduleKind.calendar:
        window = flow_windows(cfg).get(spec.name)
        return f"自动运行：{window.first} 至 {window.last} 每天 {t}（北京时间）" if window else "无自动运行"
    if spec.schedule is ScheduleKind.working_days:
        return f"自动运行：{cfg.campaign.starts} 至 {cfg.campaign.year}-12-31 每个工作日 {t}（北京时间）"
    if spec.schedule is ScheduleKind.half_hourly:
        return "自动运行：每天 8:00–18:30 每半小时（北京时间）"
    return "不自动运行：在 Run 中填写表单后提交"


# Parameters for the command line, not the operator: `files` names files on the server (`campaign
# intake`), `approve=False` is how a terminal run, which nobody can answer, skips the approval form.
CODE_ONLY = ("files", "approve")


def _with_titles(deployment: Any) -> Any:
    """Chinese titles and help on the dated flows' common parameters, and a plain date field (not a
    `date | None` toggle): the run form is what operators fill in."""
    properties = deployment._parameter_openapi_schema.properties
    for name in CODE_ONLY:  # the flow keeps them for the CLI; the form does not offer them
        properties.pop(name, None)
    for name, (title, help_text) in PARAMETER_HELP.items():
        field = properties.get(name)
        if field is None:
            continue
        if name == "today":
            field.pop("anyOf", None)
            field.update(type="string", format="date")
        elif name == "campaign_year":
            field.pop("anyOf", None)
            field.update(type="integer")
        field.update(title=title, description=help_text)
    return deployment


def deployment_of(spec: FlowSpec, cfg: CampaignConfig, *, by_module: bool = False) -> Any:
    """The deployment of one flow for one year. `by_module`: its entrypoint is the module path
    (`flows.june.june_survey`), which a work pool's workers import from the installed package, instead
    of a file path relative to this process's folder, which `serve` runs from."""
    fl = flow_of(spec)
    if by_module:
        from prefect.types.entrypoint import EntrypointType

        options: dict[str, Any] = {"entrypoint_type": EntrypointType.MODULE_PATH}
    else:
        options = {}
    year = cfg.campaign.year
    description = (
        f"**{deployment_name(spec, cfg)}**　{_schedule_text(spec, cfg)}\n\n"
        f"[打开{year}年度全省进度一览](/campaign-overview.html?year={year})\n\n{fl.description}"
    )
    if spec.schedule is ScheduleKind.form:  # run from the UI's form
        return _with_titles(
            fl.to_deployment(name=deployment_name(spec, cfg), description=description, **options)
        )
    schedule = {
        ScheduleKind.calendar: lambda: daily_schedule(cfg, spec.name),
        ScheduleKind.working_days: lambda: working_day_schedule(cfg),
        ScheduleKind.half_hourly: lambda: delivery_schedule(cfg),
    }[spec.schedule]()
    return _with_titles(
        fl.to_deployment(
            name=deployment_name(spec, cfg),
            schedules=[schedule] if schedule else [],
            description=description,
            parameters={"campaign_year": year} if spec.dated else {},
            tags=[f"campaign-{year}"] if spec.dated else [],
            triggers=[upload_trigger(spec, year)] if spec.dated else [],
            **options,
        )
    )


def upload_trigger(spec: FlowSpec, year: int) -> Any:
    """A run of the flow for today when a bureau's upload waits for its intake (tasks/intake_requests:
    one event per burst; a sweep asks again for what an event missed)."""
    from prefect.events import DeploymentEventTrigger

    from tasks.intake_requests import EVENT

    return DeploymentEventTrigger(
        name=f"{spec.title}·收到上传",
        expect={EVENT},
        match={"campaign.flow": spec.name, "campaign.year": str(year)},
        parameters={"campaign_year": year},
    )


def deployments(cfgs: list[CampaignConfig], *, by_module: bool = False) -> list[Any]:
    """Every served year's dated deployments (newest first); the others once, for the newest year."""
    newest = max(cfgs, key=lambda c: c.campaign.year)
    out = []
    for cfg in sorted(cfgs, key=lambda c: -c.campaign.year):
        out += [deployment_of(spec, cfg, by_module=by_module) for spec in FLOWS if spec.dated]
    out += [deployment_of(spec, newest, by_module=by_module) for spec in FLOWS if not spec.dated]
    return out


def served_years(today: dt.date) -> list[int]:
    """The campaigns `campaign serve` serves on `today`: this year's, and last year's until its window
    closes (its 12-31 deadlines escalate in January). With neither configured, the newest one, so that
    operators can still rehearse and replay it (its dated runs refuse days outside its window)."""
    from config import load_config
    from config.loader import available_years
    from config.settings import get_settings
    from models.deadlines import campaign_window

    years = available_years()
    chosen = get_settings().serve_years
    if chosen:
        return sorted(y for y in years if y in chosen) or years[-1:]
    served = [y for y in years if y == today.year]
    served += [
        y for y in years if y == today.year - 1 and today <= campaign_window(load_config(y).campaign).closes
    ]
    return sorted(served) or years[-1:]
