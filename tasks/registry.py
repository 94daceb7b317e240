"""The standing registry: importing an earlier year's pool and bases (a first year's start), and what
carries into a new year. The rules of the list are in models/registry.py.

The pool, its recommendations and the bases are not a year's list: every campaign reads those of its
year and every earlier one (tasks/pool.load_pool, tasks/visits, tasks/review), so `campaign new-year`
has nothing to copy — the new year's file starts on the same registry, and this module says what it
holds. A first year imports the province's own list of earlier years through the one sheet intake.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import LEVEL_LABELS, Level, Unit
from models.clock import moment
from models.db import insert_ignoring_duplicates, one_of, upsert
from models.pool import LEVEL_OF_LABEL, RANK, Hierarchy, derive
from models.registry import NOT_NAMED, REGISTRY_NOTE, registry_sheet
from models.sheets import CheckContext
from models.tables import (
    BaseSource,
    BaseStatus,
    NamedBase,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
)
from tasks.pool import IDENTITY, OBLIGATION, STORED, masked, pool_rules
from tasks.records import query_frame
from tasks.sheets import SheetIntake, Stored, StoreRequest, take_in_sheet, upsert_changed

FOLDER = "registry"


def _context(session: Session, cfg: CampaignConfig, sender: Unit, on: dt.date) -> CheckContext:
    if sender.reports_to is not None:
        raise SubmissionError(sender.name, "往年培育库及基地名录由省级导入")
    hierarchy = Hierarchy.of(cfg.units)
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    this_year = session.execute(  # an earlier year's list does not overwrite this year's applications
        sa.select(table.c.credit_code, table.c.project_name, table.c.id).where(
            table.c.year == cfg.campaign.year
        )
    ).all()
    return CheckContext(
        regions=hierarchy.region_index(),
        allowed_regions=hierarchy.jurisdiction(sender.key),
        sender_name=sender.name,
        application_date=on,
        sender_key=sender.key,
        projects={(code, name): pid for code, name, pid in this_year},
    )


def _steps(hierarchy: Hierarchy, region: str, up_to: int) -> list[tuple[str, str, Level]]:
    """The recommendations that put a project of `region` into the pool of rank `up_to`, level by level:
    (from unit, to unit, to level)."""
    chain = sorted(hierarchy.chain(region).items(), key=lambda item: RANK[item[0]])
    return [
        (low_unit, high_unit, high_level)
        for (_, low_unit), (high_level, high_unit) in pairwise(chain)
        if RANK[high_level] <= up_to
    ]


def _store(session: Session, req: StoreRequest) -> Stored:
    cfg = req.cfg
    hierarchy = Hierarchy.of(cfg.units)
    # tilts and priority as this year's rules count them; admission is the list's: it records the past
    apps = derive(
        req.rows.assign(declared_level="县级"), pool_rules(cfg), hierarchy, req.ctx.application_date
    )
    apps = masked(apps)
    apps["level"] = apps["region_key"].map(lambda k: hierarchy.units[k].level.value)
    apps["pool_unit"] = apps["region_key"]
    apps["admitted"] = True
    apps["admission_note"] = REGISTRY_NOTE + "（" + apps["pool_year"].astype(int).astype(str) + "年入库）"
    apps["year"] = apps["pool_year"].astype(int)
    counts, _ = upsert_changed(
        session,
        PoolApplication,
        apps,
        identity=IDENTITY,
        fields=[*STORED, "year"],
        scope={},
        constants={
            "submitted_by": req.sender.key,
            "source_file_id": req.file_id,
            "updated_at": req.received_at,
        },
        insert_only={"received_at": req.received_at},
    )
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    found = query_frame(
        session,
        sa.select(table.c.id, table.c.credit_code, table.c.project_name).where(
            one_of(table.c.credit_code, apps["credit_code"].unique().tolist(), dialect)
        ),
        ["id", "credit_code", "project_name"],
    )
    apps = apps.merge(found, on=IDENTITY, how="left")
    recommendations: list[dict[str, Any]] = []
    bases: list[dict[str, Any]] = []
    for r in apps.to_dict("records"):
        pool_rank = RANK[LEVEL_OF_LABEL[r["pool_level"]]]
        went_up = moment(dt.date(int(r["pool_year"]), 12, 31), cfg.campaign)
        for from_unit, to_unit, to_level in _steps(hierarchy, r["region_key"], pool_rank):
            recommendations.append(
                {
                    "year": int(r["pool_year"]),
                    "application_id": int(r["id"]),
                    "from_unit": from_unit,
                    "to_unit": to_unit,
                    "to_level": to_level.value,
                    "status": RecommendationStatus.approved.value,
                    "proposed_at": req.received_at,  # when the campaign learnt of it: its duties run from here
                    "decided_at": went_up,
                    "decided_by": REGISTRY_NOTE,
                    "reason": REGISTRY_NOTE,
                }
            )
        if r["named_level"] == NOT_NAMED:
            continue
        level = LEVEL_OF_LABEL[r["named_level"]]
        chain = hierarchy.chain(r["region_key"])
        above = [u for lv, u in chain.items() if RANK[lv] == RANK[level] + 1 and RANK[lv] <= pool_rank]
        bases.append(
            {
                "year": int(r["named_year"]),
                "unit_key": chain[level],
                "level": level.value,
                "application_id": int(r["id"]),
                "status": BaseStatus.named.value,
                "tier": str(r["tier"] or ""),
                "decree_no": str(r["decree_no"]).strip(),
                "recommended_to": above[0] if above else None,
                "source": BaseSource.imported.value,
                "decided_by": REGISTRY_NOTE,
                "decided_at": moment(dt.date(int(r["named_year"]), 12, 31), cfg.campaign),
            }
        )
    recommended = insert_ignoring_duplicates(
        session, Recommendation, recommendations, unique=["application_id", "to_level"]
    )
    if bases:
        frame = pd.DataFrame(bases)
        frame["recommended_to"] = pd.Series(
            [b["recommended_to"] for b in bases], dtype=object
        )  # None, not NaN
        upsert(
            session,
            NamedBase,
            frame,
            unique=["year", "unit_key", "application_id"],
            update=[c for c in frame.columns if c not in ("year", "unit_key", "application_id")],
            constants={"ranked_at": req.received_at, "source_file_id": req.file_id},
        )
    return Stored(
        counts={
            "new": counts["new"],
            "updated": counts["updated"],
            "duplicates": counts["duplicates"],
            "bases": len(bases),
            "recommended": recommended,
        }
    )


def registry_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=registry_sheet(cfg.campaign.year, {u.key: u.level for u in cfg.units}),
        obligation_key=OBLIGATION,
        folder=FOLDER,
        topic="培育库",
        count_labels=(
            ("new", "新登记项目"),
            ("updated", "更新"),
            ("duplicates", "与已导入内容相同"),
            ("bases", "命名基地"),
            ("recommended", "逐级推荐记录"),
        ),
        context=_context,
        store=_store,
        resubmit_hint="同一项目（统一社会信用代码与项目名称相同）重报将更新原记录，不会重复登记",
    )


def import_registry(cfg: CampaignConfig, path: Path, received_at: dt.datetime) -> dict[str, Any]:
    """Take the province's list of earlier years in (archived, checked, its errors sent back as for
    every sheet); returns the summary."""
    province = next(u for u in cfg.units if u.reports_to is None)
    return take_in_sheet(cfg, registry_intake(cfg), path, received_at, sender=province)


def registry_summary(session: Session, year: int) -> dict[str, int]:
    """What the registry holds for the campaign of `year`, carried from earlier years: pool projects,
    named bases, recommendations standing (each owes its 包保 leader's quarterly visits)."""
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    base = NamedBase.__table__  # type: ignore[attr-defined]
    rec = Recommendation.__table__  # type: ignore[attr-defined]

    def count(query: sa.Select[Any]) -> int:
        return int(session.execute(query).scalar_one())

    return {
        "pool": count(sa.select(sa.func.count()).where(app.c.year < year, app.c.admitted)),
        "bases": count(
            sa.select(sa.func.count()).where(base.c.year < year, base.c.status == BaseStatus.named.value)
        ),
        "recommended": count(
            sa.select(sa.func.count()).where(
                rec.c.year < year, rec.c.status == RecommendationStatus.approved.value
            )
        ),
        "city_bases_for_province": sum(earlier_city_bases(session, year).values()),
    }


def earlier_city_bases(session: Session, year: int) -> dict[str, int]:
    """Per city, its bases named before `year` that are not yet provincial: what the province's round
    can add to `year`'s plan (models/review.plan_reach)."""
    base = NamedBase.__table__  # type: ignore[attr-defined]
    provincial = sa.select(base.c.application_id).where(
        base.c.level == Level.province.value, base.c.status == BaseStatus.named.value, base.c.year <= year
    )
    rows = session.execute(
        sa.select(base.c.unit_key, sa.func.count(sa.distinct(base.c.application_id)))
        .where(
            base.c.year < year,
            base.c.level == Level.city.value,
            base.c.status == BaseStatus.named.value,
            ~base.c.application_id.in_(provincial),
        )
        .group_by(base.c.unit_key)
    ).all()
    return {str(key): int(n) for key, n in rows}


def summary_text(held: dict[str, int], year: int) -> str:
    """The registry carried into `year`, in the operators' words."""
    return (
        f"{year} 年度沿用往年登记：培育库项目 {held['pool']} 个，命名基地 {held['bases']} 个，"
        f"逐级推荐 {held['recommended']} 项（推荐单位继续包保、每季度走访）；"
        f"可供省级评审的往年{LEVEL_LABELS[Level.city]}基地 {held['city_bases_for_province']} 个"
    )
