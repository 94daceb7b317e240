"""The one way a flow waits for an operator's decision in the Prefect UI, and the protocol around it:
tell the province, deliver at once, wait; on a timeout, say so again and leave everything open."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect.client.orchestration import get_client
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from prefect.states import Running
from pydantic import BaseModel, Field, create_model

from config import CampaignConfig
from tasks.approval import ApprovalRequest, ask_operator
from tasks.delivery import deliver_all


class ApprovalForm(RunInput):
    """What every approval form asks first: who decides. Subclasses add the list of proposals."""

    approver: str = Field(title="审批人", min_length=1)


def ask_and_wait(
    cfg: CampaignConfig,
    request: ApprovalRequest,
    proposals: list[dict[str, Any]],
    form: Any,
    timeout_minutes: float,
    today: dt.date,
) -> Any | None:
    """The approval protocol: tell the province that `proposals` wait (with a link to this run), deliver
    that message now so someone opens the form while the run waits, and pause. Returns the submitted
    form, or None after telling the province again that nobody answered in time."""
    ask_operator(cfg, request, proposals, today, timed_out=False, run_url=flow_run.ui_url)
    deliver_all(cfg.campaign)
    answer = wait_for_decision(form, timeout_minutes)
    if answer is None:
        ask_operator(cfg, request, proposals, today, timed_out=True, run_url=None)
    return answer


def wait_for_decision(form: Any, timeout_minutes: float) -> Any | None:
    """Pause the run until the operator submits `form` (a RunInput); None if nobody answered in time.

    A timeout is not an error: the run is set back to Running so it can go on (deliver, publish) and
    end Completed, and what waited stays open for the next run.
    """
    try:
        # Checked every 2 s: the operator's Resume takes effect at once, for one light API call.
        return pause_flow_run(wait_for_input=form, timeout=int(timeout_minutes * 60), poll_interval=2)
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
