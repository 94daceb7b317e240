"""四(四) Publicity: typical bases and experience articles counted as each city's obligations, and the
exchange meeting's presenting units picked by the province and told."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE

from config import CampaignConfig
from config.schema import PublicityRules, Unit
from models.clock import moment
from models.db import insert_new, session_scope
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.publicity import city_of, publicity_sheet
from models.tables import ExchangePresentation, MessageKind, PublicityRecord
from tasks.notify import enqueue
from tasks.records import COUNTS, query_frame, records_context, settle, store_records
from tasks.sheets import SheetIntake, StoreRequest
from tasks.unit_of_work import task


def publicity_of(cfg: CampaignConfig) -> PublicityRules:
    rules: PublicityRules = cfg.require("publicity", "publicity categories and the exchange meeting")
    return rules


def _publicity_columns(req: StoreRequest) -> dict[str, Any]:
    ids = req.rows["application_id"]
    return {
        "unit_key": city_of(req.sender),  # a county's rows count for its city
        "application_id": ids.astype(object).where(ids.notna(), None),  # an article names no project
    }


def publicity_intake(cfg: CampaignConfig) -> SheetIntake:
    rules = publicity_of(cfg)
    return SheetIntake(
        sheet=publicity_sheet(rules),
        obligation_key=rules.categories[rules.typical_category],
        serves=tuple(rules.categories.values()),
        folder="publicity",
        topic="宣传报道",
        count_labels=COUNTS,
        context=records_context(1),
        store=store_records(
            PublicityRecord,
            ["unit_key", "category", "title"],
            ["application_id", "credit_code", "project_name", "outlet", "published_on"],
            _publicity_columns,
        ),
        resubmit_hint="同一类别同一标题重报将更新原记录",
    )


@task(name="publicity-progress", description="按市州统计优秀典型和经验材料", cache_policy=NO_CACHE)
def publicity_progress(cfg: CampaignConfig, today: dt.date) -> dict[str, int]:
    """Typical bases count distinct projects; other categories count records."""
    rules = publicity_of(cfg)
    table = PublicityRecord.__table__  # type: ignore[attr-defined]
    now = moment(today, cfg.campaign)
    changed = {}
    with session_scope() as session:
        records = query_frame(
            session,
            sa.select(table.c.unit_key, table.c.category, table.c.title, table.c.application_id).where(
                table.c.year == cfg.campaign.year
            ),
            ["unit_key", "category", "title", "application_id"],
        )
        for category, key in rules.categories.items():
            mine = records[records["category"] == category]
            counted = "application_id" if category == rules.typical_category else "title"
            done = mine.groupby("unit_key")[counted].nunique().rename("done").reset_index()
            progress = done.assign(subject="", period=str(cfg.campaign.year))
            changed[key] = settle(session, cfg, key, progress, now)
    return changed


def pick_presenters(
    cfg: CampaignConfig,
    presenters: list[Unit],
    *,
    meeting_on: dt.date,
    place: str,
    topic: str,
    picked_by: str,
    today: dt.date,
) -> dict[str, Any]:
    """Record the presenting units and tell each once; the province's meeting obligation is met."""
    rules = publicity_of(cfg)
    year = cfg.campaign.year
    now = moment(today, cfg.campaign)
    rows = [
        {
            "year": year,
            "unit_key": u.key,
            "meeting_on": meeting_on,
            "place": place,
            "topic": topic,
            "picked_by": picked_by,
            "picked_at": now,
        }
        for u in presenters
    ]
    decisions = [
        Decision(
            u.key,
            None,
            MessageKind.exchange,
            "picked",
            outbox_key(MessageKind.exchange, year, u.key),
            render(
                "exchange",
                {
                    "unit": u,
                    "meeting_on": meeting_on,
                    "place": place,
                    "topic": topic,
                    "campaign": cfg.campaign,
                },
            ),
        )
        for u in presenters
    ]
    province = cfg.province

    with session_scope() as session:
        new = insert_new(session, ExchangePresentation, rows, unique=["year", "unit_key"])
        told = enqueue(session, decisions)
        progress = pd.DataFrame([{"unit_key": province.key, "subject": "", "period": str(year), "done": 1}])
        settle(session, cfg, rules.exchange_obligation, progress, now)
    return {"picked": len(new), "told": told}
