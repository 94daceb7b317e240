"""What every record sheet (visits, trainings, funds, scores, publicity, income) shares: how its rows
are stored and how recorded counts settle the obligations they evidence. `settle` is the one way
progress reaches an obligation: recorded counts in, instances' done counts, status and progress
notes out, for every kind of record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from config import CampaignConfig
from config.schema import Services, Unit
from models.pool import Hierarchy
from models.services import (
    count_note,
)
from models.sheets import CheckContext
from models.tables import (
    ObligationInstance,
    ObligationStatus,
    PoolApplication,
)
from tasks.sheets import (
    ContextFn,
    Stored,
    StoreFn,
    StoreRequest,
    upsert_changed,
)


def services_of(cfg: CampaignConfig) -> Services:
    services: Services = cfg.require("services", "need categories, training kinds, funds rules")
    return services


# ------------------------------------------------------------------ taking in records
def records_context(earliest_years_back: int) -> ContextFn:
    def context(session: Session, cfg: CampaignConfig, sender: Unit, on: dt.date) -> CheckContext:
        hierarchy = Hierarchy.of(cfg.units)
        allowed = hierarchy.jurisdiction(sender.key)
        table = PoolApplication.__table__  # type: ignore[attr-defined]
        projects = session.execute(
            sa.select(table.c.credit_code, table.c.project_name, table.c.id).where(
                table.c.year <= cfg.campaign.year,  # the pool outlives the year
                table.c.admitted.is_(True),
                table.c.region_key.in_(sorted(allowed)),
            )
        ).all()
        return CheckContext(
            regions=hierarchy.region_index(),
            allowed_regions=allowed,
            sender_name=sender.name,
            application_date=on,
            units=hierarchy.region_index(leaves_only=False),
            earliest=dt.date(cfg.campaign.year - earliest_years_back, 1, 1),
            projects={(code, name): pid for code, name, pid in projects},
            sender_key=sender.key,
        )

    return context


COUNTS = (("new", "新登记"), ("updated", "更新"), ("duplicates", "与已报内容相同"))


def store_records(
    model: type[SQLModel],
    identity: list[str],
    fields: list[str],
    columns: Callable[[StoreRequest], dict[str, Any]] | None = None,
) -> StoreFn:
    """The usual way a record sheet is stored: new rows inserted, changed ones updated, by `identity`
    within the year. `columns` adds values the sheet does not hold (e.g. the sending unit)."""

    def store(session: Session, req: StoreRequest) -> Stored:
        rows = req.rows.assign(**columns(req)) if columns else req.rows
        counts, _ = upsert_changed(
            session,
            model,
            rows,
            identity=identity,
            fields=fields,
            scope={"year": req.cfg.campaign.year},
            constants={
                "submitted_by": req.sender.key,
                "source_file_id": req.file_id,
                "updated_at": req.received_at,
            },
            insert_only={"received_at": req.received_at},
        )
        return Stored(counts=counts)

    return store


def query_frame(session: Session, query: sa.Select[Any], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(session.execute(query).all(), columns=columns)


def settle(
    session: Session, cfg: CampaignConfig, obligation_key: str, progress: pd.DataFrame, now: dt.datetime
) -> int:
    """Bring one obligation's instances in line with what was recorded. The one way progress is set.

    `progress`: unit_key, subject, period, done, and optionally note. An instance with no row has
    done 0. An instance is satisfied when done reaches its required count, and reopens if a
    correction takes it below (its reminders go on from the step in force). Returns rows changed.
    """
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    current = query_frame(
        session,
        sa.select(
            table.c.id,
            table.c.unit_key,
            table.c.subject,
            table.c.period,
            table.c.required_count,
            table.c.done_count,
            table.c.status,
            table.c.progress_note,
        ).where(table.c.year == cfg.campaign.year, table.c.obligation_key == obligation_key),
        ["id", "unit_key", "subject", "period", "required", "done_before", "status", "note_before"],
    )
    if current.empty:
        return 0
    if "note" not in progress.columns:
        progress = progress.assign(note=None)
    merged = current.merge(
        progress[["unit_key", "subject", "period", "done", "note"]],
        on=["unit_key", "subject", "period"],
        how="left",
    )
    merged["done"] = merged["done"].fillna(0).astype(int)
    counted = merged["required"] > 1
    default_note = count_note(merged["done"], merged["required"]).where(counted, "")
    merged["note"] = merged["note"].where(merged["note"].notna(), default_note)
    merged["new_status"] = (merged["done"] >= merged["required"]).map(
        {True: ObligationStatus.submitted.value, False: ObligationStatus.open.value}
    )
    changed = merged[
        (merged["done"] != merged["done_before"])
        | (merged["new_status"] != merged["status"])
        | (merged["note"] != merged["note_before"])
    ]
    if changed.empty:
        return 0
    newly_met = (changed["new_status"] == "submitted") & (changed["status"] != "submitted")
    session.execute(
        sa.update(table)
        .where(table.c.id == sa.bindparam("b_id"))
        .values(
            done_count=sa.bindparam("b_done"),
            status=sa.bindparam("b_status"),
            progress_note=sa.bindparam("b_note"),
        ),
        [
            {"b_id": int(i), "b_done": int(d), "b_status": s, "b_note": n}
            for i, d, s, n in zip(
                changed["id"], changed["done"], changed["new_status"], changed["note"], strict=True
            )
        ],
    )
    met_ids = [int(i) for i in changed.loc[newly_met, "id"]]
    if met_ids:
        session.execute(sa.update(table).where(table.c.id.in_(met_ids)).values(submitted_at=now))
    return len(changed)
