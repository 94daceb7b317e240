"""三(四) Trainings: the training sheet, and each unit's count per half-year and year against its target."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from config import CampaignConfig
from models.services import (
    training_progress,
    training_sheet,
)
from models.tables import (
    TrainingRecord,
)
from tasks.records import COUNTS, query_frame, records_context, services_of, settle, store_records
from tasks.sheets import (
    SheetIntake,
)

TRAINING_FOLDER = "trainings"


def training_intake(cfg: CampaignConfig) -> SheetIntake:
    services = services_of(cfg)
    return SheetIntake(
        sheet=training_sheet(services),
        obligation_key=next(iter(services.training_kinds.values())),
        serves=tuple(services.training_kinds.values()),
        folder=TRAINING_FOLDER,
        topic="培训",
        count_labels=COUNTS,
        context=records_context(0),
        store=store_records(
            TrainingRecord, ["unit_key", "kind", "held_on", "topic"], ["attendees", "linked_projects", "note"]
        ),
        resubmit_hint="同一单位同一天同一主题的培训重报将更新原记录",
    )


def _trainings(session: Session, year: int) -> pd.DataFrame:
    table = TrainingRecord.__table__  # type: ignore[attr-defined]
    return query_frame(
        session,
        sa.select(table.c.unit_key, table.c.kind, table.c.held_on, table.c.attendees).where(
            table.c.year == year
        ),
        ["unit_key", "kind", "held_on", "attendees"],
    )


def settle_trainings(session: Session, cfg: CampaignConfig, now: dt.datetime) -> dict[str, int]:
    progress = training_progress(
        _trainings(session, cfg.campaign.year), cfg.campaign, services_of(cfg)
    ).assign(subject="")
    out = {}
    for key in services_of(cfg).training_kinds.values():
        out[key] = settle(session, cfg, key, progress[progress["obligation_key"] == key], now)
    return out
