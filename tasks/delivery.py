"""Deliver pending outbox messages: per channel, paced, retried, and recorded one by one.

Each message's outcome is committed right after its send, so a crash mid-batch never causes a
message to go out twice. A failed message stays pending for the next run and is marked dead, with its
reason, once it has used up the campaign's `delivery.max_attempts`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict

import sqlalchemy as sa
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from sqlmodel import Session, select

from config.schema import DeliveryPolicy
from config.settings import get_settings, known_secret_values
from models.db import session_scope
from models.errors import DeliveryError
from models.privacy import redact
from models.tables import Channel, OutboxMessage, OutboxStatus, Unit
from tasks.channels import Outgoing, Transport, pace_seconds, transport_for


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    try:
        return get_run_logger()
    except Exception:  # outside a flow run (CLI, benchmarks, plain tests)
        return logging.getLogger(__name__)


def pending_kinds(now: dt.datetime | None = None) -> list[str]:
    now = now or dt.datetime.now(dt.UTC)
    with session_scope() as session:
        rows = session.exec(select(OutboxMessage.channel_kind).where(*_due(now)).distinct()).all()
    return sorted(rows)


def _due(now: dt.datetime) -> list[sa.ColumnElement[bool]]:
    return [
        OutboxMessage.status == OutboxStatus.pending,  # type: ignore[list-item]
        sa.or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),  # type: ignore[union-attr,operator]
    ]


def _load(session: Session, kind: str, now: dt.datetime) -> list[Outgoing]:
    sign = (
        select(Channel.sign_secret)
        .where(
            Channel.unit_key == OutboxMessage.unit_key,
            Channel.kind == OutboxMessage.channel_kind,
            Channel.address == OutboxMessage.recipient,
        )
        .limit(1)
        .scalar_subquery()
    )
    rows = session.exec(
        select(
            OutboxMessage.id,
            OutboxMessage.unit_key,
            Unit.name,
            OutboxMessage.channel_kind,
            OutboxMessage.recipient,
            OutboxMessage.subject,
            OutboxMessage.body,
            sign,
        )
        .join(Unit, Unit.key == OutboxMessage.unit_key)  # type: ignore[arg-type]
        .where(OutboxMessage.channel_kind == kind, *_due(now))
        .order_by(OutboxMessage.id)  # type: ignore[arg-type]
    ).all()
    return [Outgoing(*row) for row in rows]


def deliver_kind(kind: str, policy: DeliveryPolicy, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due message of one channel kind. Returns counts of sent, retrying and dead."""
    settings = get_settings()
    secrets = known_secret_values(settings)
    log = _logger()
    now = now or dt.datetime.now(dt.UTC)
    counts: dict[str, int] = defaultdict(int)
    with session_scope() as session:
        messages = _load(session, kind, now)
        attempts = dict(
            session.exec(
                select(OutboxMessage.id, OutboxMessage.attempts).where(
                    OutboxMessage.id.in_([m.id for m in messages])  # type: ignore[union-attr]
                )
            ).all()
        )
    if not messages:
        return {}
    pace = pace_seconds(kind, settings)
    last_sent: dict[str, float] = {}
    transport: Transport | None = None
    setup_error: DeliveryError | None = None
    try:
        transport = transport_for(kind, settings)
    except DeliveryError as exc:
        setup_error = exc
    try:
        for msg in messages:
            tries = attempts.get(msg.id, 0)
            error: str | None = None
            retry_now = False
            delays = list(policy.retry_delays_seconds)
            while True:
                wait = pace - (time.monotonic() - last_sent.get(msg.recipient, -1e9))
                if wait > 0:
                    time.sleep(wait)
                tries += 1
                try:
                    if setup_error is not None:
                        raise setup_error
                    assert transport is not None
                    transport.send(msg)
                    error = None
                except DeliveryError as exc:
                    error = redact(str(exc), secrets)
                    retry_now = exc.retryable and delays and tries < policy.max_attempts
                finally:
                    last_sent[msg.recipient] = time.monotonic()
                if error is None or not retry_now:
                    break
                time.sleep(delays.pop(0))
            with session_scope() as session:  # one short transaction per outcome
                values: dict[str, object] = {"attempts": tries, "last_error": error}
                if error is None:
                    values |= {"status": OutboxStatus.sent, "sent_at": dt.datetime.now(dt.UTC)}
                    counts["sent"] += 1
                elif tries >= policy.max_attempts:
                    values |= {"status": OutboxStatus.dead}
                    counts["dead"] += 1
                    log.error("消息 #%s 投递失败已停止重试（%s 次）：%s", msg.id, tries, error)
                else:
                    values["next_attempt_at"] = dt.datetime.now(dt.UTC) + policy.backoff_after(tries)
                    counts["retrying"] += 1
                    log.warning("消息 #%s 投递失败（第 %s 次），下次运行重试：%s", msg.id, tries, error)
                session.execute(
                    sa.update(OutboxMessage).where(OutboxMessage.id == msg.id).values(**values)  # type: ignore[arg-type]
                )
    finally:
        if transport is not None:
            transport.close()
    return dict(counts)


@task(name="deliver", task_run_name="deliver-{kind}", description="投递通知（按渠道）", cache_policy=NO_CACHE)
def deliver_channel(kind: str, policy: DeliveryPolicy) -> dict[str, int]:
    return deliver_kind(kind, policy)


def deliver_all(policy: DeliveryPolicy) -> dict[str, int]:
    """One Prefect task per channel kind that has messages due."""
    totals: dict[str, int] = defaultdict(int)
    for kind in pending_kinds():
        for key, value in deliver_channel(kind, policy).items():
            totals[key] += value
    return dict(totals)
