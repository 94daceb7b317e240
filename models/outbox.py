"""The outbox's rules, as plain functions: how a decided message is named, and what happens to it after a
delivery run tried it.

Every message's unique key comes from `outbox_key`: its kind, the campaign year, then what makes it
this message. The outbox adds the channel and address.

A message is tried by one deliverer at a time (its claim, see tasks/delivery.py). After a run:

- sent → `sent`;
- a permanent failure (a header that cannot be built, a missing attachment, an answer in an unknown
  shape, no channel configured) → `dead` at once, with the reason;
- a transient failure → `pending` again, left alone for the policy's back-off after this many failed
  runs; it goes `dead` only when it is past `max_attempts` AND older than `dead_after_working_days`,
  so an outage shorter than that loses nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from config.schema import DeliveryPolicy
from models.workdays import WorkingCalendar


def outbox_key(kind: str, year: int, *identity: object) -> str:
    """`kind:year:identity…` — the one way to name a decided message (before its channel is added).

    `identity` is what makes it this message and no other: obligation, period, unit and step for a
    reminder; a file's hash for a receipt; a digest of a decision's contents. Deciding it again yields
    the same key, and the outbox's unique index turns the second insert into nothing. Never change a
    kind's identity once messages are stored: a changed key is a message sent twice (migration 0006
    rewrote the keys of the formats used before this function).
    """
    return ":".join([str(kind), str(year), *(str(part) for part in identity)])


@dataclass(frozen=True)
class AfterRun:
    status: str  # pending | dead
    attempts: int
    next_attempt_at: dt.datetime | None


def after_failure(
    *,
    attempts_before: int,
    permanent: bool,
    queued_at: dt.datetime,
    now: dt.datetime,
    policy: DeliveryPolicy,
    calendar: WorkingCalendar,
    timezone: str,
) -> AfterRun:
    """The message's state after one more failed run. `queued_at` is when it was queued (or revived)."""
    attempts = attempts_before + 1
    if permanent:
        return AfterRun("dead", attempts, None)
    if (
        attempts >= policy.max_attempts
        and working_days_between(calendar, queued_at, now, timezone) >= policy.dead_after_working_days
    ):
        return AfterRun("dead", attempts, None)
    return AfterRun("pending", attempts, now + policy.backoff_after(attempts))


def working_days_between(
    calendar: WorkingCalendar, start: dt.datetime, end: dt.datetime, timezone: str
) -> int:
    """Working days after `start`'s local date, up to and including `end`'s (0 on the same day)."""
    tz = ZoneInfo(timezone)
    day, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    count = 0
    while day < last:
        day += dt.timedelta(days=1)
        count += calendar.is_workday(day)
    return count


def message_id(row_id: int, dedupe_key: str, domain: str) -> str:
    """The e-mail Message-ID of an outbox row: the same on every try, so a mail system drops a repeat."""
    digest = hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:16]
    return f"<outbox-{row_id}.{digest}@{domain or 'campaign.local'}>"


EVERY_MAIL = "email"  # all e-mail leaves through the one SMTP account


def endpoint_of(channel_kind: str, recipient: str) -> str:
    """What pacing and the circuit breaker count per: the one SMTP account for all e-mail, else the robot
    or apprise target (the secret's name)."""
    return EVERY_MAIL if channel_kind == "email" else f"{channel_kind}:{recipient}"
