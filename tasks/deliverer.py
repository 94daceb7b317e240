"""One deliverer: pending outbox messages of a channel kind claimed one at a time, sent, and their
outcome recorded, in the kind's time budget, an endpoint that keeps failing skipped for the rest of the
run. No Prefect here: a deliverer process (a worker, a test's fault injection) starts in a second;
tasks/delivery.py runs the kinds side by side as Prefect tasks.

Exactly once under any number of deliverers: a deliverer claims a message in the database before
sending it (one conditional UPDATE that only one writer wins; `FOR UPDATE SKIP LOCKED` on PostgreSQL)
and records the outcome right after the send. A deliverer that dies leaves its claim to expire
(`delivery.lease_seconds`); only the one message it had in flight can then go out again, with the same
Message-ID. What happens after a failed run is the pure rule in models/outbox.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import sys
import time
import uuid
from collections import defaultdict

import sqlalchemy as sa
from sqlmodel import Session, select

from config.errors import DeliveryError
from config.schema import Campaign, DeliveryPolicy
from config.settings import get_settings, known_secret_values
from models.db import insert_ignoring_duplicates, session_scope
from models.deadlines import calendar_for
from models.messages import clip
from models.outbox import EVERY_MAIL, after_failure, endpoint_of
from models.privacy import redact
from models.tables import Channel, EndpointPace, OutboxMessage, OutboxStatus, Unit
from tasks.channels import Outgoing, Transport, pace_seconds, transport_for
from tasks.links import insert_links

ERROR_CHARS = 300  # a failure's reason as stored and shown


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The flow run's logger inside a run (Prefect is then loaded already), else this module's."""
    if "prefect" in sys.modules:
        from prefect.logging import get_run_logger

        try:
            return get_run_logger()
        except Exception:  # outside a flow run (CLI, benchmarks, plain tests)
            pass
    return logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _due(now: dt.datetime) -> list[sa.ColumnElement[bool]]:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    return [
        table.c.status == OutboxStatus.pending,
        sa.or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
        sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until <= now),
    ]


def pending_kinds(now: dt.datetime | None = None) -> list[str]:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(sa.select(table.c.channel_kind).where(*_due(now or _now())).distinct())
        return sorted(r[0] for r in rows)


def claim_next(
    kind: str,
    deliverer: str,
    now: dt.datetime,
    lease: dt.timedelta,
    *,
    skip_recipients: set[str] = frozenset(),  # type: ignore[assignment]
    skip_ids: set[int] = frozenset(),  # type: ignore[assignment]
) -> Outgoing | None:
    """Claim the oldest due message of a kind for this deliverer, or None when none is left.

    `skip_ids` are the messages this run tried already (a run tries each message once);
    `skip_recipients` the endpoints its circuit breaker opened.

    One statement in its own transaction: SQLite runs it under its single writer lock; on PostgreSQL
    the row is locked with SKIP LOCKED, so concurrent claimers take different rows.
    """
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    pick = sa.select(table.c.id).where(table.c.channel_kind == kind, *_due(now))
    if skip_recipients:
        pick = pick.where(table.c.recipient.not_in(sorted(skip_recipients)))
    if skip_ids:
        pick = pick.where(table.c.id.not_in(sorted(skip_ids)))
    pick = pick.order_by(table.c.id).limit(1).with_for_update(skip_locked=True)
    with session_scope() as session:
        claimed = session.execute(
            sa.update(table)
            .where(table.c.id == pick.scalar_subquery(), *_due(now))
            .values(claimed_by=deliverer, claimed_until=now + lease)
            .returning(table.c.id)
        ).first()
        if claimed is None:
            return None
        return _load(session, claimed[0])


def _load(session: Session, outbox_id: int) -> Outgoing:
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
    row = session.exec(
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
            OutboxMessage.dedupe_key,
            sa.func.coalesce(OutboxMessage.revived_at, OutboxMessage.created_at),
            OutboxMessage.unknown_outcomes,
        )
        .join(Unit, Unit.key == OutboxMessage.unit_key)  # type: ignore[arg-type]
        .where(OutboxMessage.id == outbox_id)
    ).one()
    found = Outgoing(*row)
    return dataclasses.replace(found, body=insert_links(session, found.body, found.unit_key))


def _record(outbox_id: int, deliverer: str, values: dict[str, object], *, only_if_mine: bool) -> None:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    where = [table.c.id == outbox_id]
    if only_if_mine:  # a failure never overwrites what another deliverer did after our claim expired
        where += [table.c.claimed_by == deliverer, table.c.status == OutboxStatus.pending]
    with session_scope() as session:
        session.execute(sa.update(table).where(*where).values(claimed_by=None, claimed_until=None, **values))


class Pacer:
    """The least time between two sends to the same endpoint (a robot, the SMTP account), across every
    deliverer at once: each send reserves the endpoint's next free moment in the database (one
    conditional UPDATE, serialised like a claim), then waits for it. DingTalk and WeCom allow a robot
    20 messages a minute, however many runs deliver at the same time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def wait(self, endpoint: str) -> None:
        if self.seconds <= 0:
            return
        pause = reserve_send_slot(endpoint, self.seconds, time.time()) - time.time()
        if pause > 0:
            time.sleep(pause)


def reserve_send_slot(endpoint: str, pace: float, now: float) -> float:
    """The moment (epoch seconds) this sender may send to `endpoint`: the later of now and the end of the
    previous reservation; the endpoint is then taken until that moment plus `pace`."""
    table = EndpointPace.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        insert_ignoring_duplicates(
            session, EndpointPace, [{"endpoint": endpoint, "free_at": 0.0}], unique=["endpoint"]
        )
        start = sa.case((table.c.free_at > now, table.c.free_at), else_=now)
        slot = session.execute(
            sa.update(table)
            .where(table.c.endpoint == endpoint)
            .values(free_at=start + pace)
            .returning(table.c.free_at)
        ).scalar_one()
    return float(slot) - pace


def _send(
    transport: Transport | DeliveryError,
    msg: Outgoing,
    policy: DeliveryPolicy,
    pacer: Pacer,
    secrets: list[str],
    deadline: float,
) -> tuple[str | None, bool, bool]:
    """Try one message: the one retry layer of delivery. A failure known not to have delivered it is
    tried again at once per the policy's delays while the kind's budget lasts; one whose outcome is
    unknown never is. Returns (redacted error or None, permanent, unknown). Never raises: whatever one
    message does is that message's failure."""
    delays = list(policy.retry_delays_seconds)
    while True:
        pacer.wait(endpoint_of(msg.channel_kind, msg.recipient))
        unknown = False
        try:
            if isinstance(transport, DeliveryError):
                raise transport  # the channel could not even be set up (e.g. no SMTP server configured)
            transport.send(msg)
            return None, False, False
        except DeliveryError as exc:
            error, permanent, unknown = redact(str(exc), secrets), not exc.retryable, exc.unknown
        except Exception as exc:  # a bug or an odd message must not stop the channel
            error, permanent = redact(f"{msg.channel_kind}: {type(exc).__name__}: {exc}", secrets), True
        if permanent or unknown or not delays or time.monotonic() + delays[0] > deadline:
            return clip(error, ERROR_CHARS), permanent, unknown
        time.sleep(delays.pop(0))


def deliver_kind(kind: str, campaign: Campaign, *, now: dt.datetime | None = None) -> dict[str, int]:
    """Send every due message of one channel kind. Returns counts of sent, retrying, dead and, when the
    budget or a broken endpoint cut the run short, left (still pending, for the next run).

    `now` fixes the clock (tests, replays); by default each claim and outcome uses the real time.
    """
    settings = get_settings()
    secrets = known_secret_values(settings)
    policy = campaign.delivery
    channel = policy.channel(kind)
    calendar = calendar_for(campaign)
    clock = (lambda: now) if now is not None else _now
    log = _logger()
    deliverer = uuid.uuid4().hex
    lease = policy.lease(kind)
    deadline = time.monotonic() + channel.budget_seconds
    counts: dict[str, int] = defaultdict(int)
    in_a_row: dict[str, int] = defaultdict(int)  # failures in a row per endpoint
    broken: set[str] = set()  # recipients whose endpoint the breaker opened: skipped for this run
    tried: set[int] = set()  # failed and still pending
    pacer = Pacer(pace_seconds(kind, settings))
    transport: Transport | DeliveryError | None = None
    try:
        while time.monotonic() < deadline:
            msg = claim_next(kind, deliverer, clock(), lease, skip_recipients=broken, skip_ids=tried)
            if msg is None:
                break
            if transport is None:
                try:
                    transport = transport_for(kind, settings, channel.timeout_seconds)
                except DeliveryError as exc:
                    transport = exc
            error, permanent, unknown = _send(transport, msg, policy, pacer, secrets, deadline)
            endpoint = endpoint_of(kind, msg.recipient)
            if error is None:
                in_a_row[endpoint] = 0
                _record(
                    msg.id,
                    deliverer,
                    {
                        "status": OutboxStatus.sent,
                        "sent_at": clock(),
                        "attempts": msg.attempts + 1,
                        "last_error": None,
                    },
                    only_if_mine=False,
                )
                counts["sent"] += 1
                continue
            unknowns = msg.unknown_outcomes + unknown
            if unknown and unknowns >= policy.max_unknown_outcomes:
                # It may have arrived every time: sending it again could flood its recipient.
                error = clip(f"{error}（已 {unknowns} 次结果未知，为免重复，不再发送）", ERROR_CHARS)
                permanent = True
            outcome = after_failure(
                attempts_before=msg.attempts,
                permanent=permanent,
                queued_at=msg.queued_at,
                now=clock(),
                policy=policy,
                calendar=calendar,
                timezone=campaign.timezone,
            )
            values: dict[str, object] = {
                "status": outcome.status,
                "attempts": outcome.attempts,
                "unknown_outcomes": unknowns,
                "last_error": error,
                "next_attempt_at": outcome.next_attempt_at,
                "dead_at": clock() if outcome.status == OutboxStatus.dead else None,
            }
            _record(msg.id, deliverer, values, only_if_mine=True)
            if outcome.status == OutboxStatus.dead:
                counts["dead"] += 1
                log.error("消息 #%s 投递失败，已停止重试（第 %s 轮）：%s", msg.id, outcome.attempts, error)
            else:
                tried.add(msg.id)  # due again at once if the back-off is zero: not in this run
                counts["retrying"] += 1
                log.warning("消息 #%s 投递失败（第 %s 轮），稍后重试：%s", msg.id, outcome.attempts, error)
            if not permanent:  # a message's own defect says nothing about the endpoint
                in_a_row[endpoint] += 1
                if in_a_row[endpoint] >= channel.breaker_failures:
                    log.warning("%s 连续 %s 条失败，本轮暂停该端点：%s", kind, in_a_row[endpoint], error)
                    if endpoint == EVERY_MAIL:
                        break  # one SMTP account: nothing else of this kind can go this run
                    broken.add(msg.recipient)
    finally:
        if transport is not None and not isinstance(transport, DeliveryError):
            transport.close()
    left = _count_due(kind, clock())
    if left:
        counts["left"] = left
    return dict(counts)


def _count_due(kind: str, now: dt.datetime) -> int:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        return int(
            session.execute(
                sa.select(sa.func.count()).where(table.c.channel_kind == kind, *_due(now))
            ).scalar_one()
        )
