"""The registry's flows as Prefect objects: resolve a `FlowSpec` (config/flows.py) to its flow, and the
deployments `campaign serve` offers, one per registered flow, scheduled by its kind."""

from __future__ import annotations

import importlib
from typing import Any

from config import CampaignConfig
from config.flows import BY_NAME, FLOWS, FlowSpec, ScheduleKind
from flows.schedules import daily_schedule, delivery_schedule, working_day_schedule

ONE_AT_A_TIME = 1  # a deployment's runs never overlap (correctness does not depend on it: claims do)


def flow_of(spec: FlowSpec | str) -> Any:
    """The Prefect flow a registry entry names."""
    spec = BY_NAME[spec] if isinstance(spec, str) else spec
    module, _, function = spec.target.partition(":")
    return getattr(importlib.import_module(module), function)


def deployment_of(spec: FlowSpec, cfg: CampaignConfig) -> Any:
    fl = flow_of(spec)
    year = cfg.campaign.year
    if spec.schedule is ScheduleKind.form:  # run from the UI's form
        return fl.to_deployment(name=f"{year}", description=fl.description)
    schedule = {
        ScheduleKind.calendar: lambda: daily_schedule(cfg, spec.name),
        ScheduleKind.working_days: lambda: working_day_schedule(cfg),
        ScheduleKind.half_hourly: lambda: delivery_schedule(cfg),
    }[spec.schedule]()
    return fl.to_deployment(
        name=f"{year}",
        schedules=[schedule] if schedule else [],
        description=fl.description,
        tags=[f"campaign-{year}"] if spec.takes_today else [],
        concurrency_limit=ONE_AT_A_TIME,
    )


def deployments(cfg: CampaignConfig) -> list[Any]:
    return [deployment_of(spec, cfg) for spec in FLOWS]
