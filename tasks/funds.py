"""三(五) Funds: the ledger sheet (a resubmission updates its rows), arrival and execution rates at each
checkpoint, and flags (funds diverted, subsidies out of step) raised once each and told to the
province at once. The rules are in models/services.py.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from config import CampaignConfig
from models.db import insert_new
from models.deadlines import periods
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision, owes
from models.services import (
    checkpoint_status,
    diverted,
    fund_rates,
    fund_sheet,
    rate_text,
    special_funds,
    subsidies_out_of_step,
)
from models.tables import (
    FundRecord,
    MessageKind,
    ServiceFlag,
)
from tasks.notify import enqueue
from tasks.records import COUNTS, query_frame, records_context, services_of, settle, store_records
from tasks.sheets import (
    MESSAGE_ITEMS,
    SheetIntake,
    Stored,
    StoreRequest,
)

FUNDS = "funds_tracking"
# A ledger row's money: allocated, arrived and spent, each with its date.
AMOUNTS = ["allocated", "allocated_on", "arrived", "arrived_on", "executed", "executed_on"]
FLAG_LABELS = {"diversion": "省级专项资金挪用", "subsidy_out_of_step": "市级基地补助未与省级同步发放"}


def _store_funds(session: Session, req: StoreRequest) -> Stored:
    rules = services_of(req.cfg).funds
    rows = req.rows.assign(diversion=diverted(req.rows, rules))
    stored = store_records(
        FundRecord,
        ["unit_key", "document_no", "purpose"],
        ["source", "fund_year", *AMOUNTS, "note", "diversion"],
    )(session, StoreRequest(req.cfg, rows, req.ctx, req.file_id, req.sender, req.received_at))
    flagged = rows[rows["diversion"]]
    stored.notes = [
        {
            "row": int(r["_row"]),
            "subject": f"{r['document_no']}（{r['purpose']}）",
            "note": f"{rules.provincial_source}用于可用范围以外的用途，已作为挪用情况报告省厅",
        }
        for r in flagged.head(MESSAGE_ITEMS).to_dict("records")
    ]
    stored.noted = len(flagged)
    return stored


def fund_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=fund_sheet(services_of(cfg).funds),
        obligation_key=FUNDS,
        topic="资金",
        count_labels=COUNTS,
        context=records_context(5),  # ledgers carry earlier years' funds (2021 base subsidies)
        store=_store_funds,
        notes_title="省级专项资金用途超出可用范围（已报告省厅）",
        resubmit_hint="同一单位同一资金文号与用途的行重报将更新原记录",
    )


def fund_ledger(session: Session, year: int) -> pd.DataFrame:
    table = FundRecord.__table__  # type: ignore[attr-defined]
    columns = ["unit_key", "source", "fund_year", "document_no", "purpose", *AMOUNTS, "diversion"]
    return query_frame(
        session, sa.select(*(table.c[c] for c in columns)).where(table.c.year == year), columns
    )


def settle_funds(
    session: Session, cfg: CampaignConfig, funds: pd.DataFrame, today: dt.date, now: dt.datetime
) -> dict[str, int]:
    """Each checkpoint is met when the unit's rates, as of today, reach the checkpoint's targets.

    As of today rather than of the checkpoint: reminders and escalations stop once a unit has caught
    up; the rates each unit had on each checkpoint day stay visible in the funds artifact.
    """
    rules = services_of(cfg).funds
    ob = cfg.campaign.obligation(FUNDS)
    owing = [u.key for u in cfg.units if owes(ob, u)]
    frames = []
    for period in periods(cfg.campaign, ob):
        status = checkpoint_status(funds, rules, owing, rules.targets[period.due], today)
        frames.append(
            pd.DataFrame(
                {
                    "unit_key": status.index,
                    "subject": "",
                    "period": period.label,
                    "done": status["met"].astype(int).to_numpy(),
                    "note": status["note"].to_numpy(),
                }
            )
        )
    progress = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return {"checkpoints": settle(session, cfg, FUNDS, progress, now) if frames else 0}


def raise_flags(
    session: Session, cfg: CampaignConfig, funds: pd.DataFrame, today: dt.date, now: dt.datetime
) -> int:
    """Diversion and out-of-step subsidies: each raised once, told to the province and the unit at once."""
    rules = services_of(cfg).funds
    rows: list[dict[str, Any]] = []
    diversions = funds[funds["diversion"].astype(bool)] if not funds.empty else funds
    for r in diversions.to_dict("records"):
        rows.append(
            {
                "kind": "diversion",
                "unit_key": r["unit_key"],
                "subject": f"{r['document_no']}|{r['purpose']}",
                "detail": f"{r['source']}（文号 {r['document_no']}）用于“{r['purpose']}”，支出 {r['executed']:g} 万元，"
                f"不在省级专项资金可用范围（{'、'.join(rules.eligible_purposes)}）",
            }
        )
    for r in subsidies_out_of_step(funds, rules, today).to_dict("records"):
        rows.append(
            {
                "kind": "subsidy_out_of_step",
                "unit_key": r["unit_key"],
                "subject": "base_subsidy",
                "detail": r["detail"],
            }
        )
    new_ids = insert_new(
        session,
        ServiceFlag,
        [{"year": cfg.campaign.year, "raised_at": now, **r} for r in rows],
        unique=["year", "kind", "unit_key", "subject"],
    )
    if not new_ids:
        return 0
    flag = ServiceFlag.__table__  # type: ignore[attr-defined]
    raised = session.execute(
        sa.select(flag.c.id, flag.c.kind, flag.c.unit_key, flag.c.detail).where(flag.c.id.in_(new_ids))
    ).all()
    by_unit: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
    for flag_id, kind, unit_key, detail in raised:
        by_unit[unit_key].append((flag_id, kind, detail))
    province = cfg.province
    decisions = []
    for unit_key, flags in sorted(by_unit.items()):
        unit = cfg.unit(unit_key)
        ids = "-".join(str(f[0]) for f in sorted(flags))
        listed = [{"kind": FLAG_LABELS[kind], "detail": detail} for _, kind, detail in sorted(flags)]
        for recipient in dict.fromkeys((province, unit)):
            message = render(
                "flag",
                {
                    "campaign": cfg.campaign,
                    "unit": recipient,
                    "flagged_unit": unit,
                    "flags": listed,
                    "today": today,
                },
            )
            decisions.append(
                Decision(
                    recipient.key,
                    None,
                    MessageKind.flag,
                    "",
                    outbox_key(MessageKind.flag, cfg.campaign.year, ids, recipient.key),
                    message,
                )
            )
    enqueue(session, decisions)
    return len(new_ids)


def funds_table(session: Session, cfg: CampaignConfig, today: dt.date) -> pd.DataFrame:
    """Per owing unit: the special funds' rates today and on each checkpoint day (as of that day), and
    its flags."""
    funds = special_funds(fund_ledger(session, cfg.campaign.year), services_of(cfg).funds)
    ob = cfg.campaign.obligation(FUNDS)
    owing = [u for u in cfg.units if owes(ob, u)]
    out = pd.DataFrame({"单位": [u.name for u in owing]}, index=[u.key for u in owing])
    now = fund_rates(funds, today)
    out["专项资金下达（万元）"] = now["allocated"].reindex(out.index).fillna(0).round(2)
    out["到位率"] = now["arrival_rate"].reindex(out.index).map(rate_text)
    out["执行率"] = now["execution_rate"].reindex(out.index).map(rate_text)
    for period in periods(cfg.campaign, ob):
        if period.due <= today:
            then = fund_rates(funds, period.due)
            out[f"{period.label} 到位/执行"] = (
                then["arrival_rate"].reindex(out.index).map(rate_text)
                + " / "
                + then["execution_rate"].reindex(out.index).map(rate_text)
            )
    flag = ServiceFlag.__table__  # type: ignore[attr-defined]
    flags = query_frame(
        session,
        sa.select(flag.c.unit_key, flag.c.kind).where(flag.c.year == cfg.campaign.year),
        ["unit_key", "kind"],
    )
    listed = flags.assign(kind=flags["kind"].map(FLAG_LABELS)).groupby("unit_key")["kind"].agg("、".join)
    out["预警"] = listed.reindex(out.index).fillna("")
    return out.reset_index(names="代码")
