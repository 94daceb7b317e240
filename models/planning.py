"""What to tell whom today: the pure decision behind every kickoff, reminder and escalation.

Input: the campaign, the obligation's open instances, the hierarchy and a date. Output: decisions
(recipient unit, kind, step, rendered text, dedupe key). No database and no Prefect: the flows store
these decisions in the outbox, the calendar preview and the tests read them directly.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.schema import Campaign, Obligation, Unit
from models.deadlines import (
    Period,
    StepKind,
    calendar_for,
    current_step,
    days_late,
    periods,
    plan_steps,
    working_days_left,
)
from models.messages import Rendered, render
from models.tables import MessageKind


@dataclass(frozen=True)
class OpenInstance:
    """An obligation instance that has not been satisfied yet."""

    id: int
    unit_key: str
    period: str
    last_step: str | None = None


@dataclass(frozen=True)
class Decision:
    unit_key: str  # who receives it
    obligation_id: int | None
    kind: MessageKind
    step: str
    dedupe_base: str  # + channel makes the outbox's unique key
    message: Rendered
    attachment: str | None = None  # path of a file to send with it


def period_label(period: Period) -> str:
    label = period.label
    if "-Q" in label:
        return f"{label[:4]}年第{label[-1]}季度"
    if "-H" in label:
        return f"{label[:4]}年{'上' if label[-1] == '1' else '下'}半年"
    return ""


def owes(ob: Obligation, unit: Unit) -> bool:
    return unit.level in ob.owed_by or unit.key in ob.units


def decide(
    campaign: Campaign,
    ob: Obligation,
    open_instances: Iterable[OpenInstance],
    units: Mapping[str, Unit],
    today: dt.date,
) -> list[Decision]:
    """The notifications in force today for one obligation's open instances.

    Each open instance gets the current step's message (kickoff, reminder, or an overdue notice once
    escalation has begun); each supervising unit gets ONE escalation per step listing all its late
    units. An instance whose last decided step is the current one is skipped: it was decided already.
    """
    cal = calendar_for(campaign)
    by_period: dict[str, list[OpenInstance]] = defaultdict(list)
    for inst in open_instances:
        by_period[inst.period].append(inst)
    decisions: list[Decision] = []
    for period in periods(campaign, ob):
        instances = by_period.get(period.label)
        if not instances:
            continue
        step = current_step(plan_steps(campaign, ob, period, cal), today)
        if step is None:
            continue
        base_ctx = {
            "campaign": campaign,
            "obligation": ob,
            "due": period.due,
            "today": today,
            "step": step.code,
            "period_label": period_label(period),
            "working_days_left": working_days_left(cal, today, period.due),
            "days_late": days_late(today, period.due),
        }
        late_by_supervisor: dict[str, list[Unit]] = defaultdict(list)
        for inst in instances:
            unit = units[inst.unit_key]
            if step.kind is StepKind.escalation and unit.reports_to:
                late_by_supervisor[unit.reports_to].append(unit)
            if inst.last_step == step.code:
                continue
            if step.kind is StepKind.escalation:
                kind = MessageKind.overdue
                supervisor = units.get(unit.reports_to or "")
                if supervisor is None:
                    continue  # nobody above the province: nothing to escalate to
                message = render("overdue", {**base_ctx, "unit": unit, "supervisor": supervisor})
            else:
                kind = MessageKind(step.kind.value)
                message = render(kind.value, {**base_ctx, "unit": unit})
            decisions.append(
                Decision(
                    unit_key=unit.key,
                    obligation_id=inst.id,
                    kind=kind,
                    step=step.code,
                    dedupe_base=f"{campaign.year}:{ob.key}:{period.label}:{unit.key}:{kind}:{step.code}",
                    message=message,
                )
            )
        for sup_key, late in sorted(late_by_supervisor.items()):
            supervisor = units[sup_key]
            message = render(
                "escalation",
                {
                    **base_ctx,
                    "unit": supervisor,
                    "late_units": sorted(late, key=lambda u: u.key),
                    "step_number": int(step.code[1:]),
                },
            )
            decisions.append(
                Decision(
                    unit_key=sup_key,
                    obligation_id=None,
                    kind=MessageKind.escalation,
                    step=step.code,
                    dedupe_base=f"{campaign.year}:{ob.key}:{period.label}:{sup_key}:escalation:{step.code}",
                    message=message,
                )
            )
    return decisions
