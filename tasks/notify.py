"""Decide notifications and write them to the outbox, in the same transaction as the state they come from.

This is the only place that writes outbox rows. Delivery (tasks/delivery.py) happens afterwards.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, select

from config import CampaignConfig
from models import links
from models.clock import now
from models.db import insert_ignoring_duplicates, session_scope
from models.deadlines import step_label
from models.messages import COUNT_LABELS
from models.planning import Decision, OpenInstance, decide
from models.tables import Channel, ObligationInstance, ObligationStatus, OutboxMessage, Unit
from tasks.artifacts import publish_table
from tasks.unit_of_work import task

MAILBOX = ("mailbox", "mailbox")


def channels_by_unit(session: Session, unit_keys: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """(kind, address) per unit; a unit with none configured gets the local mailbox."""
    keys = set(unit_keys)
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    if keys:
        rows = session.exec(
            select(Channel.unit_key, Channel.kind, Channel.address).where(
                Channel.unit_key.in_(keys)  # type: ignore[attr-defined]
            )
        ).all()
        for unit_key, kind, address in rows:
            found[unit_key].append((kind, address))
    return {k: found.get(k) or [MAILBOX] for k in keys}


def dedupe_key(text: str) -> str:
    """The outbox's unique key: as written while it fits the column, else its hash (a long file name)."""
    if len(text) <= 255:
        return text
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def with_page_link(session: Session, decisions: list[Decision]) -> dict[int, str]:
    """Each decision's body with its unit's page link at the end (tasks/links.py): every message a
    city or county gets — kickoff, reminder, escalation, receipt, refusal, result — by any channel,
    carries the way to answer it. The province's messages point into the operators' UI instead. The
    outbox keeps a placeholder; the deliverer writes the live link in as it sends."""
    keys = {d.unit_key for d in decisions}
    province = set(
        session.exec(select(Unit.key).where(Unit.key.in_(keys), Unit.level == "province")).all()  # type: ignore[attr-defined]
    )
    bodies = {}
    for i, d in enumerate(decisions):
        body = d.message.body
        year_part = d.dedupe_base.split(":", 2)[1]  # outbox_key: kind:year:…
        if d.unit_key not in province and year_part.isdigit():
            body = f"{body.rstrip()}\n\n{PAGE_LINK}{links.placeholder(d.unit_key, int(year_part))}\n"
        bodies[i] = body
    return bodies


PAGE_LINK = "本单位办理页面（待办事项、模板下载、上传材料、处理结果）："


def enqueue(session: Session, decisions: list[Decision]) -> int:
    """One outbox row per decision and channel; duplicates of earlier decisions are skipped. The one
    way a message enters the outbox: its unit's page link is added here."""
    channels = channels_by_unit(session, {d.unit_key for d in decisions})
    bodies = with_page_link(session, decisions)
    rows = [
        {
            "dedupe_key": dedupe_key(f"{d.dedupe_base}:{kind}:{address}"),
            "unit_key": d.unit_key,
            "obligation_id": d.obligation_id,
            "kind": d.kind.value,
            "step": d.step,
            "channel_kind": kind,
            "recipient": address,
            "subject": d.message.subject,
            "body": bodies[i],
            "status": "pending",
            "attempts": 0,
            "created_at": now(),
            "attachment": d.attachment,
        }
        for i, d in enumerate(decisions)
        for kind, address in channels[d.unit_key]
    ]
    return insert_ignoring_duplicates(session, OutboxMessage, rows, unique=["dedupe_key"])


def open_instances(session: Session, year: int, obligation_key: str) -> list[OpenInstance]:
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(
            table.c.id,
            table.c.unit_key,
            table.c.period,
            table.c.last_step,
            table.c.kickoff_on,
            table.c.due_on,
            table.c.subject,
            table.c.subject_label,
            table.c.progress_note,
        ).where(
            table.c.year == year,
            table.c.obligation_key == obligation_key,
            table.c.status == ObligationStatus.open,
        )
    ).all()
    return [OpenInstance(*r) for r in rows]


def todays_decisions(session: Session, cfg: CampaignConfig, key: str, today: dt.date) -> list[Decision]:
    ob = cfg.campaign.obligation(key)
    units = {u.key: u for u in cfg.units}
    return decide(cfg.campaign, ob, open_instances(session, cfg.campaign.year, key), units, today)


@task(name="preview-notices", description="预演：列出本日将发出的通知，不发送", cache_policy=NO_CACHE)
def preview_notices(cfg: CampaignConfig, obligation_keys: list[str], today: dt.date) -> dict[str, int]:
    """A dry run's day: the messages a real run today would queue (decide() leaves out what was decided
    before), as a table artifact. Writes nothing."""
    units = {u.key: u.name for u in cfg.units}
    rows: list[dict[str, str]] = []
    with session_scope() as session:
        for key in obligation_keys:
            # decide() skips instances whose current step was decided already: what is left is new
            for d in todays_decisions(session, cfg, key, today):
                rows.append(
                    {
                        "事项": cfg.campaign.obligation(key).title,
                        "收件单位": units.get(d.unit_key, d.unit_key),
                        "类型": COUNT_LABELS.get(d.kind.value, d.kind.value),
                        "步骤": step_label(d.step),
                        "标题": d.message.subject,
                        "正文": d.message.body,
                    }
                )
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["类型"]] += 1
    description = (
        f"预演（{today:%Y-%m-%d}）：本日将发出 {len(rows)} 条通知（"
        + ("，".join(f"{k} {v}" for k, v in counts.items()) or "无")
        + "）。这是预演：未收件，未发送，也未记录任何提醒。"
    )
    publish_table("dry-run-notices", rows, description, year=cfg.campaign.year, title="预演通知清单")
    return {"would_send": len(rows)}


@task(
    name="record-reminders",
    description="生成启动通知、提醒与督办",
    retries=2,
    retry_delay_seconds=5,
    cache_policy=NO_CACHE,
)
def record_reminders(cfg: CampaignConfig, obligation_keys: list[str], today: dt.date) -> dict[str, int]:
    """Decide today's kickoff/reminder/escalation messages and store them with each instance's last step."""
    counts: dict[str, int] = defaultdict(int)
    with session_scope() as session:
        for key in obligation_keys:
            decisions = todays_decisions(session, cfg, key, today)
            counts["queued"] += enqueue(session, decisions)
            by_step: dict[str, list[int]] = defaultdict(list)
            for d in decisions:
                counts[d.kind.value] += 1
                by_step[d.step] += d.instance_ids
            for step, ids in by_step.items():
                session.execute(
                    sa.update(ObligationInstance)
                    .where(ObligationInstance.id.in_(ids))  # type: ignore[union-attr]
                    .values(last_step=step)
                )
    return dict(counts)
