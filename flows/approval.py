"""The one way a flow waits for an operator's decision in the Prefect UI."""

from __future__ import annotations

from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import BaseModel, Field, create_model


def wait_for_decision(form: Any, timeout_minutes: float) -> Any | None:
    """Pause the run until the operator submits `form` (a RunInput); None if nobody answered in time.

    A timeout is not an error: the run is set back to Running so it can go on (deliver, publish) and
    end Completed, and what waited stays open for the next run.
    """
    try:
        return pause_flow_run(wait_for_input=form, timeout=int(timeout_minutes * 60), poll_interval=5)
    except FlowPauseTimeout:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Running(), force=True)
        return None


def prefilled_form(
    base: type[RunInput], field: str, items: list[BaseModel], title: str, description: str
) -> Any:
    """`base` with its list `field` defaulting to `items` (the proposals), shown under `description`.

    Built here rather than by `with_initial_data(field=items)`, which would drop the items' Chinese
    titles and make the approver optional.
    """
    item = type(items[0]) if items else BaseModel
    form = create_model(
        base.__name__, __base__=base, **{field: (list[item], Field(default=items, title=title))}
    )  # type: ignore[call-overload,valid-type]
    return form.with_initial_data(description=description)
