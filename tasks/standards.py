"""三(二)、四(二) The 入库标准表 taken in, and the admission bars it sets (rules in models/standards.py).

Bureaus send it with their standards filing, to its own inbox folder (`standards_sheet/`: the
filing's documents go to `standards_filing/`). It goes through tasks/sheets.py like every sheet; a
unit's accepted bar is then read by every admission judgement of the year (`admission_rules`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from config import CampaignConfig
from config.schema import PoolRules
from models.standards import BAR_COLUMNS, STANDARD_SHEET, with_filed_bars
from models.tables import AdmissionStandard
from tasks.records import COUNTS, records_context, store_records
from tasks.sheets import SheetIntake

OBLIGATION = "standards_filing"
FOLDER = "standards_sheet"


def standards_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=STANDARD_SHEET,
        obligation_key=OBLIGATION,
        folder=FOLDER,
        topic="入库标准",
        count_labels=COUNTS,
        context=records_context(0),
        store=store_records(AdmissionStandard, ["unit_key"], BAR_COLUMNS),
        resubmit_hint="重报将更新本单位的入库标准",
    )


def filed_bars(session: Session, year: int) -> list[dict[str, Any]]:
    """The year's filed bars: unit_key and the bar fields, one per unit."""
    table = AdmissionStandard.__table__  # type: ignore[attr-defined]
    query = sa.select(table.c.unit_key, *(table.c[c] for c in BAR_COLUMNS)).where(table.c.year == year)
    return [dict(row._mapping) for row in session.execute(query)]


def admission_rules(session: Session, cfg: CampaignConfig, rules: PoolRules) -> PoolRules:
    """The pool's rules with every unit's filed bar in force (over the campaign file's)."""
    return with_filed_bars(rules, filed_bars(session, cfg.campaign.year))
