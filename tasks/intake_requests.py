"""Asking for an intake run when an upload arrives, without a burst of uploads becoming a burst of runs.

An upload records a request for its flow and year (`intake_request`) and asks Prefect for a run by an
event (`campaign.upload.received`, matched by a trigger on the flow's deployment) only when no request
is already waiting to be taken: ten uploads in a minute are one run, and one more after it for what
came while it worked. A run marks the request taken as it begins its intake (`taken`); whatever arrives
later asks again. Events are fire-and-forget and can be lost (the server down, a restart): `sweep` asks
again for any request no run took within `RETRY_SECONDS`. The database is the source of truth.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from models.db import session_scope
from models.tables import IntakeRequest

EVENT = "campaign.upload.received"
RETRY_SECONDS = 60.0
log = logging.getLogger(__name__)


def _table() -> sa.Table:
    return IntakeRequest.__table__  # type: ignore[attr-defined,no-any-return]


def request_intake(flow: str, year: int, now: dt.datetime) -> bool:
    """Record that files wait for `flow`'s intake and ask for a run unless one is already asked for
    and not yet taken. True if an event was sent."""
    table = _table()
    with session_scope() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).values(flow=flow, year=year, requested_at=now)
        session.execute(
            stmt.on_conflict_do_update(index_elements=["flow", "year"], set_={"requested_at": now})
        )
        row = session.execute(sa.select(table).where(table.c.flow == flow, table.c.year == year)).one()
        waiting = row.asked_at is not None and (row.taken_at is None or row.taken_at < row.asked_at)
        if waiting and (now - row.asked_at).total_seconds() < RETRY_SECONDS:
            return False  # a run is asked for already: it will take this file too
        session.execute(
            sa.update(table).where(table.c.flow == flow, table.c.year == year).values(asked_at=now)
        )
    return ask(flow, year, now)


def taken(flow: str, year: int, at: dt.datetime) -> None:
    """A run of `flow` begins its intake: what waits now is its to take."""
    table = _table()
    with session_scope() as session:
        session.execute(
            sa.update(table).where(table.c.flow == flow, table.c.year == year).values(taken_at=at)
        )


def sweep(now: dt.datetime) -> int:
    """Ask again for every request no run took within RETRY_SECONDS of its asking; returns how many."""
    table = _table()
    limit = now - dt.timedelta(seconds=RETRY_SECONDS)
    with session_scope() as session:
        rows = session.execute(
            sa.select(table.c.flow, table.c.year).where(
                sa.or_(table.c.taken_at.is_(None), table.c.taken_at < table.c.requested_at),
                sa.or_(table.c.asked_at.is_(None), table.c.asked_at < limit),
            )
        ).all()
        for flow, year in rows:
            session.execute(
                sa.update(table).where(table.c.flow == flow, table.c.year == year).values(asked_at=now)
            )
    return sum(ask(flow, year, now) for flow, year in rows)


def ask(flow: str, year: int, now: dt.datetime) -> bool:
    """Send the event a deployment trigger answers with a run of `flow` for `year`. False when the
    Prefect server cannot be reached (the sweep asks again): never raises."""
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        return False
    auth = os.environ.get("PREFECT_API_AUTH_STRING")
    event = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"campaign-intake|{flow}|{year}|{now.isoformat()}")),
        "occurred": now.isoformat(),
        "event": EVENT,
        "resource": {
            "prefect.resource.id": f"campaign.inbox.{flow}.{year}",
            "campaign.flow": flow,
            "campaign.year": str(year),
        },
        "payload": {},
    }
    try:
        with httpx.Client(auth=tuple(auth.split(":", 1)) if auth else None, timeout=5) as client:  # type: ignore[arg-type]
            # A served API wants a CSRF token with every write, as Prefect's own clients send it.
            client_id = f"campaign-portal-{uuid.uuid4().hex[:8]}"
            token = client.get(f"{api.rstrip('/')}/csrf-token", params={"client": client_id})
            headers = {}
            if token.status_code == 200:
                headers = {"Prefect-Csrf-Token": token.json()["token"], "Prefect-Csrf-Client": client_id}
            answer = client.post(f"{api.rstrip('/')}/events", json=[event], headers=headers)
            return answer.status_code < 300
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        log.warning("could not ask for an intake run of %s (%s): %s", flow, year, type(exc).__name__)
        return False
