"""What to tell whom today: the pure decision behind every kickoff, reminder and escalation.

Input: the campaign, the obligation's open instances, the hierarchy and a date. Output: decisions
(recipient unit, kind, step, rendered text, dedupe key). No database and no Prefect: the flows store
these decisions in the outbox, the calendar preview and the tests read them directly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from config.schema import AfterEvent, Campaign, Obligation, Unit
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
from models.outbox import outbox_key
from models.tables import MessageKind


@dataclass(frozen=True)
class OpenInstance:
    """An obligation instance that has not been satisfied yet."""

    id: int
    unit_key: str
    period: str
    last_step: str | None = None
    kickoff_on: dt.date | None = None  # None: the period's dates from config
    due_on: dt.date | None = None
    subject: str = ""  # "app:17" for an obligation owed per recommended project
    subject_label: str = ""  # the project's name
    progress_note: str = ""  # "已举办 1 次，应不少于 2 次"

    @property
    def item(self) -> str:
        """What is still owed, in a reminder's list; "" when the obligation itself says it all."""
        return "；".join(part for part in (self.subject_label, self.progress_note) if part)


@dataclass(frozen=True)
class LateUnit:
    """A late unit in an escalation, with what it still owes (its projects, its progress)."""

    key: str
    name: str
    detail: str = ""


@dataclass(frozen=True)
class Decision:
    unit_key: str  # who receives it
    obligation_id: int | None
    kind: MessageKind
    step: str
    dedupe_base: str  # from `outbox_key`; + channel makes the outbox's unique key
    message: Rendered
    attachment: str | None = None  # path of a file to send with it
    instance_ids: tuple[int, ...] = ()  # the instances whose step this decides

    def __post_init__(self) -> None:
        if not self.dedupe_base.startswith(f"{self.kind}:"):  # built by hand, not by outbox_key
            raise ValueError(f"outbox key {self.dedupe_base!r} does not start with its kind {self.kind}")


def period_label(period: Period) -> str:
    label = period.label
    if "-Q" in label:
        return f"{label[:4]}年第{label[-1]}季度"
    if "-H" in label:
        return f"{label[:4]}年{'上' if label[-1] == '1' else '下'}半年"
    if len(label) == 10:  # a checkpoint date
        day = dt.date.fromisoformat(label)
        return f"{day.month}月{day.day}日节点"
    return ""


def owes(ob: Obligation, unit: Unit) -> bool:
    return unit.level in ob.owed_by or unit.key in ob.units


def _short_hash(parts: Iterable[str]) -> str:
    return hashlib.sha256("|".join(sorted(parts)).encode()).hexdigest()[:10]


def decide(
    campaign: Campaign,
    ob: Obligation,
    open_instances: Iterable[OpenInstance],
    units: Mapping[str, Unit],
    today: dt.date,
) -> list[Decision]:
    """The notifications in force today for one obligation's open instances.

    Each unit with open instances gets ONE message for the current step (kickoff, reminder, or an
    overdue notice once escalation has begun), listing what it still owes — its projects, its
    progress; each supervising unit gets ONE escalation per step listing all its late units. An
    instance whose last decided step is the current one is skipped: it was decided already.
    """
    cal = calendar_for(campaign)
    config_periods = {p.label: p for p in periods(campaign, ob)}
    by_period: dict[Period, list[OpenInstance]] = defaultdict(list)
    for inst in open_instances:
        if inst.kickoff_on is not None and inst.due_on is not None:
            period = Period(inst.period, inst.kickoff_on, inst.due_on)
        elif inst.period in config_periods:
            period = config_periods[inst.period]
        else:
            continue  # a period the config no longer has
        by_period[period].append(inst)
    per_subject = ob.subject != "unit"
    own_dates = isinstance(ob.schedule, AfterEvent)  # each instance has its own due date
    decisions: list[Decision] = []
    for period, instances in sorted(by_period.items(), key=lambda kv: (kv[0].due, kv[0].label)):
        step = current_step(plan_steps(campaign, ob, period, cal), today)
        if step is None:
            continue
        period_id = period.label + (f"@{period.due.isoformat()}" if own_dates else "")
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
        by_unit: dict[str, list[OpenInstance]] = defaultdict(list)
        for inst in instances:
            by_unit[inst.unit_key].append(inst)
        late_by_supervisor: dict[str, list[LateUnit]] = defaultdict(list)
        for unit_key, owned in sorted(by_unit.items()):
            unit = units[unit_key]
            owned.sort(key=lambda i: (i.subject_label, i.id))
            if step.kind is StepKind.escalation and unit.level in ob.principle_only:
                continue  # a principle, not a minimum: late units are listed in the status, not chased
            if step.kind is StepKind.escalation and unit.reports_to:
                detail = "、".join(i.item for i in owned if i.item)
                late_by_supervisor[unit.reports_to].append(LateUnit(unit.key, unit.name, detail))
            fresh = [i for i in owned if i.last_step != step.code]
            if not fresh:
                continue
            if step.kind is StepKind.kickoff and not ob.kickoff_notice:
                continue  # the event that started it told the unit already
            if step.kind is StepKind.escalation:
                kind = MessageKind.overdue
                supervisor = units.get(unit.reports_to or "")
                if supervisor is None:
                    continue  # nobody above the province: nothing to escalate to
                message = render(
                    "overdue", {**base_ctx, "unit": unit, "supervisor": supervisor, "items": _items(owned)}
                )
            else:
                kind = MessageKind(step.kind.value)
                message = render(kind.value, {**base_ctx, "unit": unit, "items": _items(owned)})
            # Per-project obligations: a project added after the unit heard of this step still
            # gets its own message (the key names the projects); a rerun sends nothing new.
            tail = [_short_hash(i.subject for i in fresh)] if per_subject else []
            decisions.append(
                Decision(
                    unit_key=unit.key,
                    obligation_id=fresh[0].id if len(fresh) == 1 else None,
                    kind=kind,
                    step=step.code,
                    dedupe_base=outbox_key(
                        kind, campaign.year, ob.key, period_id, unit.key, step.code, *tail
                    ),
                    message=message,
                    instance_ids=tuple(i.id for i in fresh),
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
                    dedupe_base=outbox_key(
                        MessageKind.escalation, campaign.year, ob.key, period_id, sup_key, step.code
                    ),
                    message=message,
                )
            )
    return decisions


def _items(owned: list[OpenInstance]) -> list[str]:
    return [i.item for i in owned if i.item]
