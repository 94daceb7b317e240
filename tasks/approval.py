"""Asking the province for a decision: the message that proposals wait for an operator, for every flow
that pauses for one (the pool's recommendations, the review's namings). The pause itself and the
protocol around it are flows/approval.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from config import CampaignConfig
from models.clock import local_date
from models.db import session_scope
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.tables import MessageKind
from tasks.notify import enqueue
from tasks.sheets import MESSAGE_ITEMS


@dataclass(frozen=True)
class ApprovalRequest:
    """What waits for the operator, in the words of the message that asks for it."""

    topic: str  # "pool", "review": part of the message's key
    flow_name: str  # the deployment the operator runs again after a timeout
    what: str  # after the count in the subject: "个培育库项目等待逐级推荐审批"
    intro: str  # the first sentence of the message
    state: str  # what the proposals stay while nobody decides: "“拟推荐”"
    action: str  # what the operator does in the form


def ask_operator(
    cfg: CampaignConfig,
    request: ApprovalRequest,
    proposals: list[dict[str, Any]],
    today: dt.date,
    *,
    timed_out: bool,
    run_url: str | None,
) -> int:
    """Tell the province that `proposals` wait for its decision: when a run pauses for it, and again when
    that run stopped waiting. At most one of each a day per topic. Returns the messages queued."""
    if not proposals:
        return 0
    province = cfg.province
    step = "timed_out" if timed_out else "waiting"
    message = render(
        "approval_due",
        {
            "unit": province,
            "count": len(proposals),
            "what": request.what,
            "intro": request.intro,
            "flow_name": request.flow_name,
            "state": request.state,
            "action": request.action,
            "oldest": min(local_date(p["proposed_at"], cfg.campaign) for p in proposals),
            "proposals": proposals[:MESSAGE_ITEMS],
            "more": max(0, len(proposals) - MESSAGE_ITEMS),
            "timed_out": timed_out,
            "run_url": run_url,
        },
    )
    key = outbox_key(MessageKind.approval_due, cfg.campaign.year, request.topic, today.isoformat(), step)
    with session_scope() as session:
        return enqueue(session, [Decision(province.key, None, MessageKind.approval_due, step, key, message)])
