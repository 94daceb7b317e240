"""An audit record of every flow run: who or what triggered it, with which parameters, and what it did."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

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
    params = {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in parameters.items()}
    with session_scope() as session:
        row = FlowRunAudit(
            flow_name=flow_name,
            flow_run_id=run_id,
            trigger=trigger,
            parameters=params,
            started_at=dt.datetime.now(dt.UTC),
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
                .values(finished_at=dt.datetime.now(dt.UTC), outcome=outcome, counts=counts)
            )
