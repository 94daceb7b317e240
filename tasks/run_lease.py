"""One run at a time per flow and campaign year, claimed in the database while the run works.

Why not Prefect's deployment concurrency limit: its slot is released when a run pauses for an operator,
but the flow engine keeps renewing the lease it was given (300 s, renewed at 0.75 of that), and the
renewal's 410 ends the paused run `Crashed` about four minutes after it started. An approval may wait
hours (`approval_timeout_minutes`). Here the lease is the campaign's own: taken when a dated run starts,
given back for the length of a pause (`released_while`) and taken again before the run goes on, so a
run that waits for an operator blocks no one and a run that works never overlaps another.

The same for every way a run starts (schedule, operator, CLI, a work pool's worker), since it lives in
the campaign's database. Correctness never depended on it (claims do); it keeps two runs from doing the
same day's work twice over and their logs from interleaving.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from models.db import session_scope
from models.tables import RunLease

LEASE_SECONDS = 60.0  # a run whose process died frees its flow within a minute
RENEW_SECONDS = 15.0
POLL_SECONDS = 2.0  # how often a waiting run looks again

_held: ContextVar[Lease | None] = ContextVar("run_lease", default=None)


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except Exception:  # outside a flow run
        return logging.getLogger(__name__)


def try_claim(name: str, holder: str, *, now: float | None = None, seconds: float = LEASE_SECONDS) -> bool:
    """Take the lease `name` for `holder` if it is free, expired or already theirs. One statement, so two
    claimants at once cannot both win (SQLite serialises writers; PostgreSQL locks the row)."""
    now = time.time() if now is None else now
    table = RunLease.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        stmt = insert(table).values(name=name, holder=holder, expires_at=now + seconds)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"holder": stmt.excluded.holder, "expires_at": stmt.excluded.expires_at},
            where=sa.or_(table.c.expires_at < now, table.c.holder == holder),
        )
        session.execute(stmt)
        owner = session.execute(sa.select(table.c.holder).where(table.c.name == name)).scalar_one()
    return bool(owner == holder)


def renew(name: str, holder: str, *, seconds: float = LEASE_SECONDS) -> bool:
    """Extend the lease if `holder` still has it."""
    table = RunLease.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        result = session.execute(
            sa.update(table)
            .where(table.c.name == name, table.c.holder == holder)
            .values(expires_at=time.time() + seconds)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def give_back(name: str, holder: str) -> None:
    table = RunLease.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        session.execute(sa.delete(table).where(table.c.name == name, table.c.holder == holder))


def holder_of(name: str) -> str | None:
    """Who holds `name` now (None when free or expired)."""
    table = RunLease.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        return session.execute(
            sa.select(table.c.holder).where(table.c.name == name, table.c.expires_at >= time.time())
        ).scalar_one_or_none()


class Lease:
    """A held lease, renewed in the background until given back."""

    def __init__(self, name: str, holder: str, waiting_text: str) -> None:
        self.name, self.holder, self.waiting_text = name, holder, waiting_text
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def take(self) -> None:
        """Wait until the lease is ours (saying so once in the run's log), then keep it renewed."""
        told = False
        while not try_claim(self.name, self.holder):
            if not told:
                _logger().info(self.waiting_text)
                told = True
            time.sleep(POLL_SECONDS)
        self.keep_renewed()

    def keep_renewed(self) -> None:
        """Renew the (just claimed) lease in the background until it is given back."""
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {self.name}", daemon=True)
        self._renewer.start()

    def give_back(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        give_back(self.name, self.holder)

    def _renew(self) -> None:
        while not self._stop.wait(RENEW_SECONDS):
            try:
                if not renew(self.name, self.holder):
                    _logger().warning("本次运行的占用已过期（%s），另一运行可能同时办理", self.name)
                    return
            except Exception as exc:  # a database hiccup: try again next time; the lease has slack
                logging.getLogger(__name__).warning("renewing %s failed: %s", self.name, exc)


@contextlib.contextmanager
def one_at_a_time(name: str, holder: str | None, waiting_text: str) -> Iterator[None]:
    """Hold the lease `name` for the block (see the module's docstring)."""
    lease = Lease(name, holder or f"direct-{uuid.uuid4().hex[:16]}", waiting_text)
    lease.take()
    token = _held.set(lease)
    try:
        yield
    finally:
        _held.reset(token)
        lease.give_back()


@contextlib.contextmanager
def released_while() -> Iterator[None]:
    """Give the current run's lease back for the block (a pause for an operator) and take it again
    after it, waiting if another run of the same flow started working meanwhile."""
    lease = _held.get()
    if lease is None:
        yield
        return
    lease.give_back()
    try:
        yield
    finally:
        lease.take()


@contextlib.contextmanager
def claimed(name: str, holder: str) -> Iterator[bool]:
    """Hold `name` for the block if nobody else does (True), without waiting (False: another run has
    it); kept renewed while held, so a long piece of work is never taken over, and given back after."""
    if not try_claim(name, holder):
        yield False
        return
    lease = Lease(name, holder, "")
    lease.keep_renewed()
    try:
        yield True
    finally:
        lease.give_back()
