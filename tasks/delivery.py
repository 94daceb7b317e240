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
            OutboxMessage.attempts,
            OutboxMessage.attachment,
        )
        .join(Unit, Unit.key == OutboxMessage.unit_key)  # type: ignore[arg-type]
        .where(OutboxMessage.channel_kind == kind, *_due(now))
        .order_by(OutboxMessage.id)  # type: ignore[arg-type]
    ).all()
    return [Outgoing(*row) for row in rows]


class Pacer:
    """The least time between two sends to the same endpoint (a robot, an SMTP account)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def wait(self, endpoint: str) -> None:
        pause = self.seconds - (time.monotonic() - self._last.get(endpoint, -1e9))
        if pause > 0:
            time.sleep(pause)
        self._last[endpoint] = time.monotonic()


def _send(
    transport: Transport | DeliveryError,
    msg: Outgoing,
    policy: DeliveryPolicy,
    pacer: Pacer,
    secrets: list[str],
) -> tuple[int, str | None]:
    """Try one message, retrying at once per the policy's delays. Returns (tries so far, redacted error)."""
    tries, delays = msg.attempts, list(policy.retry_delays_seconds)
    while True:
        pacer.wait(msg.recipient)
        tries += 1
        try:
            if isinstance(transport, DeliveryError):
                raise transport  # the channel could not even be set up (e.g. no SMTP server configured)
            transport.send(msg)
            return tries, None
        except DeliveryError as exc:
            error = redact(str(exc), secrets)
            if not (exc.retryable and delays and tries < policy.max_attempts):
                return tries, error
        time.sleep(delays.pop(0))


def deliver_kind(kind: str, policy: DeliveryPolicy, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due message of one channel kind. Returns counts of sent, retrying and dead."""
    settings = get_settings()
    secrets = known_secret_values(settings)
    log = _logger()
    with session_scope() as session:
        messages = _load(session, kind, now or dt.datetime.now(dt.UTC))
    if not messages:
        return {}
    counts: dict[str, int] = defaultdict(int)
    pacer = Pacer(pace_seconds(kind, settings))
    try:
        transport: Transport | DeliveryError = transport_for(kind, settings)
    except DeliveryError as exc:
        transport = exc
    try:
        for msg in messages:
            tries, error = _send(transport, msg, policy, pacer, secrets)
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
            with session_scope() as session:  # committed before the next send: never sent twice
                session.execute(
                    sa.update(OutboxMessage).where(OutboxMessage.id == msg.id).values(**values)  # type: ignore[arg-type]
                )
    finally:
        if not isinstance(transport, DeliveryError):
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
