"""An audit record of every flow run: who or what triggered it, with which parameters, and what it did.

Its times are on the campaign's one clock (models/clock.py): a run for a business date starts at that
date's moment and finishes as long after it as the work really took."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from models.clock import now
from models.db import session_scope
from models.tables import FlowRunAudit


def current_trigger() -> tuple[str | None, str]:
    """(flow run id, trigger): schedule, operator (a deployment run started by a person) or direct.

    Read from the run's own context, which holds the flow run as the engine created it: no API call.
    """
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None:
        return None, "direct"
    if run.deployment_id is None:
        return str(run.id), "direct"
    return str(run.id), "schedule" if run.auto_scheduled else "operator"


@contextmanager
def audited(flow_name: str, parameters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yields a dict the flow fills with outcome counts; the row is closed with the outcome."""
    run_id, trigger = current_trigger()
    started_at, clock = now(), time.monotonic()  # the business moment, when the run has one
    params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in parameters.items()}
    with session_scope() as session:
        row = FlowRunAudit(
            flow_name=flow_name,
            flow_run_id=run_id,
            trigger=trigger,
            parameters=params,
            started_at=started_at,
        )
        session.add(row)
        session.flush()
        audit_id = row.id
    counts: dict[str, Any] = {}
    outcome = "failed"
    try:
        yield counts
        outcome = "completed"
    finally:
        with session_scope() as session:
            session.execute(
                sa.update(FlowRunAudit)
                .where(FlowRunAudit.id == audit_id)  # type: ignore[arg-type]
                .values(
                    finished_at=started_at + dt.timedelta(seconds=time.monotonic() - clock),
                    outcome=outcome,
                    counts=counts,
                )
            )
