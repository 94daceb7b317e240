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
    """(flow run id, trigger): schedule, operator (a deployment run started by a person) or direct."""
    from prefect.runtime import deployment, flow_run

    run_id = flow_run.id
    if not run_id:
        return None, "direct"
    if not deployment.id:
        return str(run_id), "direct"
    try:
        from prefect.client.orchestration import get_client

        with get_client(sync_client=True) as client:
            run = client.read_flow_run(run_id)
        return str(run_id), "schedule" if run.auto_scheduled else "operator"
    except Exception:  # the audit must never fail the run it describes
        return str(run_id), "operator"


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
