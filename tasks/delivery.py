"""Deliver pending outbox messages: every channel kind side by side (each a Prefect task in a flow run,
one deliverer each: tasks/deliverer.py), and the messages given up.

Exactly once under any number of deliverers: a deliverer claims a message in the database before
sending it (one conditional UPDATE that only one writer wins; `FOR UPDATE SKIP LOCKED` on PostgreSQL)
and records the outcome right after the send. A deliverer that dies leaves its claim to expire
(`delivery.lease_seconds`); only the one message it had in flight can then go out again, with the same
Message-ID. What happens after a failed run is the pure rule in models/outbox.py.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE
from prefect.context import FlowRunContext
from sqlmodel import select

from config import CampaignConfig
from config.schema import Campaign
from models.db import session_scope
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.tables import MessageKind, OutboxMessage, OutboxStatus, Unit
from tasks.deliverer import deliver_kind, pending_kinds
from tasks.notify import enqueue
from tasks.unit_of_work import task


@task(name="deliver", task_run_name="deliver-{kind}", description="投递通知（按渠道）", cache_policy=NO_CACHE)
def deliver_channel(kind: str, campaign: Campaign) -> dict[str, int]:
    return deliver_kind(kind, campaign)


def deliver_all(campaign: Campaign) -> dict[str, int]:
    """Every channel kind with messages due, side by side: a slow robot never holds back e-mail.

    In a flow run each kind is a Prefect task (one line per kind in the run's graph); elsewhere (the
    CLI's helpers, benchmarks) plain threads.
    """
    kinds = pending_kinds()
    if not kinds:
        return {}
    if FlowRunContext.get() is not None:
        futures = [deliver_channel.submit(kind, campaign) for kind in kinds]
        results = [f.result() for f in futures]
    else:
        with ThreadPoolExecutor(max_workers=len(kinds)) as pool:
            results = list(pool.map(lambda kind: deliver_kind(kind, campaign), kinds))
    totals: dict[str, int] = defaultdict(int)
    for counts in results:
        for key, value in counts.items():
            totals[key] += value
    return dict(totals)


# ------------------------------------------------------------------ dead messages
# The reason first after who and how: it is what the operator acts on; the long subject last.
DEAD_COLUMNS = ("编号", "收件单位", "渠道", "失败原因", "停止时间", "轮次", "收件地址", "主题")


def dead_messages(limit: int = 500, since: dt.datetime | None = None) -> list[dict[str, object]]:
    """The messages given up (since a moment, if given), newest first, as the province sees them."""
    where = [OutboxMessage.status == OutboxStatus.dead]
    if since is not None:
        where.append(OutboxMessage.dead_at > since)  # type: ignore[operator]
    with session_scope() as session:
        rows = session.exec(
            select(
                OutboxMessage.id,
                Unit.name,
                OutboxMessage.channel_kind,
                OutboxMessage.last_error,
                OutboxMessage.dead_at,
                OutboxMessage.attempts,
                OutboxMessage.recipient,
                OutboxMessage.subject,
            )
            .join(Unit, Unit.key == OutboxMessage.unit_key)  # type: ignore[arg-type]
            .where(*where)
            .order_by(OutboxMessage.dead_at.desc(), OutboxMessage.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
    return [dict(zip(DEAD_COLUMNS, row, strict=True)) for row in rows]


def dead_count() -> int:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        return int(
            session.execute(
                sa.select(sa.func.count()).where(table.c.status == OutboxStatus.dead)
            ).scalar_one()
        )


def revive_dead(ids: list[int] | None = None, *, now: dt.datetime | None = None) -> int:
    """Send dead messages again (all, or these ids): pending, attempts from zero, aged from now."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    where = [table.c.status == OutboxStatus.dead]
    if ids is not None:
        where.append(table.c.id.in_(ids))
    with session_scope() as session:
        result = session.execute(
            sa.update(table)
            .where(*where)
            .values(
                status=OutboxStatus.pending,
                attempts=0,
                unknown_outcomes=0,
                next_attempt_at=None,
                dead_at=None,
                revived_at=now or dt.datetime.now(dt.UTC),
                claimed_by=None,
                claimed_until=None,
            )
        )
        return int(result.rowcount or 0)


DIGEST_ITEMS = 30


def queue_dead_digest(cfg: CampaignConfig, today: dt.date) -> int:
    """Once a day, tell the province which messages were given up since the last digest. Returns how many."""
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        last = session.execute(
            sa.select(sa.func.max(table.c.created_at)).where(table.c.kind == MessageKind.dead_digest)
        ).scalar_one()
        since = [table.c.status == OutboxStatus.dead]
        if last is not None:
            since.append(table.c.dead_at > last)
        new = int(session.execute(sa.select(sa.func.count()).where(*since)).scalar_one())
        if not new:
            return 0
        dead = dead_messages(limit=DIGEST_ITEMS, since=last)
        total = dead_count()
        message = render(
            "dead_digest",
            {"unit": cfg.province, "today": today, "items": dead, "total": total, "more": new - len(dead)},
        )
        enqueue(
            session,
            [
                Decision(
                    cfg.province.key,
                    None,
                    MessageKind.dead_digest,
                    "",
                    outbox_key(MessageKind.dead_digest, cfg.campaign.year, today.isoformat()),
                    message,
                )
            ],
        )
    return new


__all__ = ["DEAD_COLUMNS", "dead_count", "dead_messages", "deliver_all", "queue_dead_digest", "revive_dead"]
