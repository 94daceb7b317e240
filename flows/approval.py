"""The one way a flow waits for an operator's decision in the Prefect UI, and the protocol around it:
tell the province, deliver at once, wait; on a timeout, say so again and leave everything open."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, TypeVar

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
from tasks.run_lease import released_while

M = TypeVar("M", bound=BaseModel)


class ApprovalForm(RunInput):
    """What every approval form asks first: who decides. `decision_form` adds each proposal's decisions."""

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
    end Completed, and what waited stays open for the next run. While it waits, the run holds no lease
    (tasks/run_lease.py): other runs of its flow may work, and nothing of Prefect's expires under it.
    """
    try:
        with released_while():
            # Checked every 2 s: the operator's Resume takes effect at once, for one light API call.
            return pause_flow_run(wait_for_input=form, timeout=int(timeout_minutes * 60), poll_interval=2)
    except FlowPauseTimeout:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run.id, Running(), force=True)
        return None


def decision_form(
    base: type[RunInput],
    items: list[BaseModel],
    decided: tuple[str, ...],
    description: str,
    choices: dict[str, tuple[str, ...]] | None = None,
) -> Any:
    """The form for deciding on `items` (the proposals): they are shown read-only in `description` (a
    table); the form takes only each one's decisions (`decided`: an agree switch, a reason …) as fields
    named `<field>_<id>` and titled with the proposal's number and name, after the approver.

    One field per decision rather than a list of proposals: a list would let the operator edit the
    proposals themselves, delete rows or add new ones in the UI. `choices` limits a decision to the
    values given (e.g. the configured tiers).
    """
    fields: dict[str, Any] = {}
    for item in items:
        label = f"{item.id}号 {getattr(item, 'project', '')}".strip()  # type: ignore[attr-defined]
        for name in decided:
            info = type(item).model_fields[name]
            # a field with `choices` is a list to pick from (the UI's select), not free text
            kind = Literal[choices[name]] if choices and name in choices else info.annotation  # type: ignore[valid-type]
            fields[f"{name}_{item.id}"] = (  # type: ignore[attr-defined]
                kind,
                Field(default=getattr(item, name), title=f"{label}：{info.title}"),
            )
    form = create_model(base.__name__, __base__=base, **fields)  # type: ignore[call-overload]
    return form.with_initial_data(description=description)


def decisions_of(answer: Any, items: list[M], decided: tuple[str, ...]) -> list[M]:
    """The proposals with the operator's decisions from a submitted `decision_form`."""
    return [
        item.model_copy(update={name: getattr(answer, f"{name}_{item.id}") for name in decided})  # type: ignore[attr-defined]
        for item in items
    ]
