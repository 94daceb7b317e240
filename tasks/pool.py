"""The incubation pool's side effects: take in application workbooks, propose and decide recommendations,
publish each pool. The rules themselves are in models/applications.py and models/pool.py.

Workbooks are taken in by tasks/sheets.py (archive, row checks, error workbook, result message); what
is particular to applications is how good rows are judged and stored: admission, tilts and priority,
and identity by credit code + project name, so a corrected resubmission updates the application.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from config import CampaignConfig
from config.schema import LEVEL_LABELS, Level, PoolRules, Unit
from models import markdown
from models.applications import APPLICATION_SHEET, COLUMNS
from models.db import insert_ignoring_duplicates, one_of, session_scope
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.pool import RANK, Hierarchy, derive, proposals, tilt_labels
from models.privacy import mask_phone
from models.sheets import CheckContext
from models.tables import (
    MessageKind,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
)
from models.workbook import CHUNK_ROWS
from tasks.artifacts import publish_table
from tasks.notify import enqueue
from tasks.sheets import MESSAGE_ITEMS, SheetIntake, Stored, StoreRequest, take_in_sheet, upsert_changed
from tasks.standards import admission_rules
from tasks.unit_of_work import task

OBLIGATION = "pool_intake"

# What is stored of a checked row (personal data only masked), and what identifies it.
IDENTITY = ["credit_code", "project_name"]  # in every year: an earlier year's project is updated
FROM_SHEET = [c.field for c in COLUMNS if c.field not in ("leader_id", "phone", "region_key")]
DERIVED = ["poverty_employment", "key_county", "priority", "level", "pool_unit", "admitted", "admission_note"]
STORED = [*FROM_SHEET, "leader_id_masked", "phone_masked", "region_key", *DERIVED]


def pool_rules(cfg: CampaignConfig) -> PoolRules:
    rules: PoolRules = cfg.require("pool", "the incubation pool's admission bars and weights")
    return rules


def _context(session: Session, cfg: CampaignConfig, sender: Unit, on: dt.date) -> CheckContext:
    hierarchy = Hierarchy.of(cfg.units)
    return CheckContext(
        regions=hierarchy.region_index(),
        allowed_regions=hierarchy.jurisdiction(sender.key),
        sender_name=sender.name,
        application_date=on,
    )


def masked(apps: pd.DataFrame) -> pd.DataFrame:
    """The applications with their ID and phone numbers masked, as they are stored (vectorised)."""
    apps = apps.copy()
    apps["leader_id_masked"] = apps["leader_id"].str.slice_replace(6, -4, "*" * 8)
    apps["phone_masked"] = apps["phone"].str.slice_replace(3, -4, "****")  # mobiles, in one pass
    landline = apps["phone"].str.startswith("0")  # the few landlines keep their area code
    apps.loc[landline, "phone_masked"] = apps.loc[landline, "phone"].map(mask_phone)
    return apps


def _standing(session: Session, year: int, apps: pd.DataFrame) -> pd.DataFrame:
    """A project admitted in an earlier year stays in its pool when it files again (应收尽收 once, the
    pool a standing registry): its new figures are kept, its admission is not judged away."""
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    query = sa.select(
        table.c.credit_code, table.c.project_name, table.c.year, table.c.level, table.c.pool_unit
    ).where(
        table.c.year < year,
        table.c.admitted.is_(True),
        one_of(table.c.credit_code, apps["credit_code"].unique().tolist(), dialect),
    )
    earlier = pd.DataFrame(
        session.execute(query).all(), columns=[*IDENTITY, "entered", "was_level", "was_unit"]
    )
    if earlier.empty:
        return apps
    apps = apps.merge(earlier, on=IDENTITY, how="left")
    keep = apps["entered"].notna() & ~apps["admitted"].astype(bool)
    apps.loc[keep, "admission_note"] = (
        "已于 "
        + apps.loc[keep, "entered"].astype(int).astype(str)
        + " 年入库，仍在培育库（本次报送"
        + apps.loc[keep, "admission_note"]
        + "）"
    )
    apps.loc[keep, "level"] = apps.loc[keep, "was_level"]
    apps.loc[keep, "pool_unit"] = apps.loc[keep, "was_unit"]
    apps.loc[keep, "admitted"] = True
    return apps.drop(columns=["entered", "was_level", "was_unit"])


def _store(session: Session, req: StoreRequest) -> Stored:
    """Judge admission, tilts and priority, then insert new applications and update changed ones."""
    cfg = req.cfg
    rules = admission_rules(session, cfg, pool_rules(cfg))  # each unit's filed bar in force
    # 三(三) rolling intake: judged on the day the file arrives (三(六)'s 申请日 is the review's)
    apps = derive(
        req.rows, rules, Hierarchy.of(cfg.units), rules.years_operating_on or req.ctx.application_date
    )
    apps = _standing(session, cfg.campaign.year, masked(apps))
    counts, written = upsert_changed(
        session,
        PoolApplication,
        apps,
        identity=IDENTITY,
        fields=STORED,
        scope={},  # one project, one row, whatever year it applied in: the pool outlives the year
        constants={
            "submitted_by": req.sender.key,
            "source_file_id": req.file_id,
            "updated_at": req.received_at,
        },
        insert_only={"received_at": req.received_at, "year": cfg.campaign.year},
    )
    new = written["is_new"] if not written.empty else pd.Series(dtype=bool)
    admitted = written["admitted"] if not written.empty else pd.Series(dtype=bool)
    below = written[~admitted] if not written.empty else written
    notes = [
        {"row": int(r["source_row"]), "subject": r["project_name"], "note": r["admission_note"]}
        for r in below.head(MESSAGE_ITEMS).to_dict("records")
    ]
    return Stored(
        counts={
            "admitted": int((new & admitted).sum()),
            "not_admitted": int((new & ~admitted).sum()),
            "updated": counts["updated"],
            "duplicates": counts["duplicates"],
        },
        notes=notes,
        noted=len(below),
    )


POOL_INTAKE = SheetIntake(
    sheet=APPLICATION_SHEET,
    obligation_key=OBLIGATION,
    topic="培育库",
    count_labels=(
        ("admitted", "新入库"),
        ("not_admitted", "未达入库条件"),
        ("updated", "更新"),
        ("duplicates", "与已报内容相同"),
    ),
    context=_context,
    store=_store,
    notes_title="未达入库条件（已登记，条件满足后可更正重报）",
    resubmit_hint="同一项目（统一社会信用代码与项目名称相同）重报将更新原申报，不会重复入库",
)


def take_in_workbook(
    cfg: CampaignConfig,
    path: Path,
    received_at: dt.datetime,
    *,
    sender: Unit | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Take one application workbook in; returns the summary its sender is told (also the CLI's JSON)."""
    pool_rules(cfg)  # no rules, no intake: say so before anything is read
    return take_in_sheet(cfg, POOL_INTAKE, path, received_at, sender=sender, chunk_rows=chunk_rows)


@task(name="take-in-workbook", description="培育库申报表收件、校验、入库", cache_policy=NO_CACHE, retries=1)
def take_in_workbook_task(cfg: CampaignConfig, path: Path, received_at: dt.datetime) -> dict[str, Any]:
    """A workbook an operator named (left where it is): a retry meets what was stored as a duplicate."""
    return take_in_workbook(cfg, path, received_at)


def template_appendix(rules: PoolRules) -> tuple[str, list[tuple[str, str]]]:
    """The year's default bars, for the application template's instructions sheet."""
    rows = []
    for level, bar in rules.admission.items():
        area = "、".join(
            part
            for part in (
                f"经营场所≥{bar.min_premises_m2:g}平方米" if bar.min_premises_m2 is not None else "",
                f"种植≥{bar.min_planted_mu:g}亩" if bar.min_planted_mu is not None else "",
            )
            if part
        )
        rows.append(
            (
                LEVEL_LABELS[level],
                f"经营≥{bar.min_years_operating:g}年；{area or '面积不限'}（满足其一）；带动创业≥{bar.min_entrepreneurs_driven}人；"
                f"吸纳就业≥{bar.min_jobs}人；人均年工资≥{bar.min_avg_wage_yuan:g}元",
            )
        )
    return "各级默认入库条件（各地已备案的本级标准优先）", rows


# ------------------------------------------------------------------ the pools and recommendations
POOL_COLUMNS = [
    "id",
    "project_name",
    "entity_name",
    "region_key",
    "level",
    "pool_unit",
    "priority",
    "directions",
    "speciality",
    "beef_cattle",
    "assistance_workshop",
    "border_village",
    "hollow_village",
    "commended",
    "growth_stage",
    "demonstrative",
    "poverty_employment",
    "key_county",
    "founded_on",
    "premises_m2",
    "planted_mu",
    "entrepreneurs_driven",
    "jobs",
    "avg_wage_yuan",
]


def load_pool(session: Session, year: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pool as it stands in `year`: admitted applications of that year and every earlier one (the
    pool is a standing registry), each with the highest pool it has reached; and all recommendations
    made up to that year."""
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    apps = pd.DataFrame(
        session.execute(
            sa.select(*(table.c[c] for c in POOL_COLUMNS)).where(table.c.year <= year, table.c.admitted)
        ).all(),
        columns=POOL_COLUMNS,
    )
    rec_cols = ["id", "application_id", "from_unit", "to_unit", "to_level", "status", "reason", "decided_by"]
    rtable = Recommendation.__table__  # type: ignore[attr-defined]
    recs = pd.DataFrame(
        session.execute(sa.select(*(rtable.c[c] for c in rec_cols)).where(rtable.c.year <= year)).all(),
        columns=rec_cols,
    )
    apps["own_level"], apps["own_unit"] = apps["level"], apps["pool_unit"]
    approved = recs[recs["status"] == RecommendationStatus.approved].copy()
    if not approved.empty:
        approved["rank"] = approved["to_level"].map(lambda v: RANK[Level(v)])
        top = approved.sort_values("rank").groupby("application_id").tail(1).set_index("application_id")
        reached = apps["id"].isin(top.index)
        apps.loc[reached, "level"] = apps.loc[reached, "id"].map(top["to_level"])
        apps.loc[reached, "pool_unit"] = apps.loc[reached, "id"].map(top["to_unit"])
    return apps, recs


def _route(units: dict[str, Unit], from_unit: str, to_unit: str) -> str:
    return f"{units[from_unit].name} → {units[to_unit].name}"


def open_proposals(session: Session, cfg: CampaignConfig) -> list[dict[str, Any]]:
    """Proposals waiting for a decision, highest priority first, as shown in the approval form."""
    units = {u.key: u for u in cfg.units}
    rows = session.execute(
        sa.select(
            Recommendation.id,
            Recommendation.from_unit,
            Recommendation.to_unit,
            Recommendation.proposed_at,
            PoolApplication.project_name,
            PoolApplication.entity_name,
            PoolApplication.priority,
        )
        .join(PoolApplication, PoolApplication.id == Recommendation.application_id)  # type: ignore[arg-type]
        .where(
            Recommendation.year == cfg.campaign.year, Recommendation.status == RecommendationStatus.proposed
        )
        .order_by(PoolApplication.priority.desc(), Recommendation.id)  # type: ignore[attr-defined]
    ).all()
    return [
        {
            "id": r.id,
            "route": _route(units, r.from_unit, r.to_unit),
            "project": r.project_name,
            "entity": r.entity_name,
            "priority": round(float(r.priority), 2),
            "proposed_at": r.proposed_at,
            "from_unit": r.from_unit,
            "to_unit": r.to_unit,
        }
        for r in rows
    ]


@task(
    name="propose-recommendations",
    description="应推尽推：列出符合上一级入库条件的项目",
    cache_policy=NO_CACHE,
)
def propose_recommendations(cfg: CampaignConfig, today: dt.date, now: dt.datetime) -> list[dict[str, Any]]:
    """Record a proposal for every admitted project that meets the next pool's bar; return all open ones."""
    hierarchy = Hierarchy.of(cfg.units)
    with session_scope() as session:
        rules = admission_rules(session, cfg, pool_rules(cfg))
        apps, recs = load_pool(session, cfg.campaign.year)
        decided = set(zip(recs["application_id"], recs["to_level"], strict=True))
        candidates = proposals(apps, rules, hierarchy, rules.years_operating_on or today)
        fresh = [
            {
                "year": cfg.campaign.year,
                "application_id": int(r["id"]),
                "from_unit": r["pool_unit"],
                "to_unit": r["to_unit"],
                "to_level": r["to_level"],
                "status": RecommendationStatus.proposed.value,
                "proposed_at": now,
                "reason": "",
            }
            for r in candidates.to_dict("records")
            if (r["id"], r["to_level"]) not in decided
        ]
        insert_ignoring_duplicates(session, Recommendation, fresh, unique=["application_id", "to_level"])
        return open_proposals(session, cfg)


def decide_recommendations(
    cfg: CampaignConfig,
    decisions: list[tuple[int, bool, str]],
    *,
    decided_by: str,
    decided_at: dt.datetime,
    flow_run_id: str | None,
) -> dict[str, int]:
    """Record an operator's decisions (id, approve, reason) on open proposals and tell both units.

    Only proposals still open are changed: deciding twice, or after someone else did, changes nothing.
    """
    units = {u.key: u for u in cfg.units}
    with session_scope() as session:
        proposed = {p["id"]: p for p in open_proposals(session, cfg)}
        chosen = [(rid, ok, reason.strip()) for rid, ok, reason in decisions if rid in proposed]
        for approve in (True, False):
            ids = [rid for rid, ok, _ in chosen if ok is approve]
            if not ids:
                continue
            session.execute(
                sa.update(Recommendation)
                .where(Recommendation.id.in_(ids), Recommendation.status == RecommendationStatus.proposed)  # type: ignore[union-attr]
                .values(
                    status=RecommendationStatus.approved if approve else RecommendationStatus.excluded,
                    decided_by=decided_by,
                    decided_at=decided_at,
                    flow_run_id=flow_run_id,
                )
            )
        for rid, ok, reason in chosen:
            if not ok:
                session.execute(
                    sa.update(Recommendation)
                    .where(Recommendation.id == rid)  # type: ignore[arg-type]
                    .values(reason=reason or "（审批人未填写理由）")
                )
        by_unit: dict[tuple[str, bool], dict[str, list[dict[str, Any]]]] = defaultdict(
            lambda: {"approved": [], "excluded": []}
        )
        for rid, ok, reason in chosen:
            item = proposed[rid] | {"reason": reason or "（审批人未填写理由）"}
            by_unit[(item["from_unit"], False)]["approved" if ok else "excluded"].append(item)
            if ok:
                by_unit[(item["to_unit"], True)]["approved"].append(item)
        messages = []
        for (unit_key, receiving), items in by_unit.items():
            ids = sorted(i["id"] for group in items.values() for i in group)
            digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]
            message = render(
                "recommendation",
                {
                    "campaign": cfg.campaign,
                    "unit": units[unit_key],
                    "decided_by": decided_by,
                    "decided_at": decided_at,
                    "receiving": receiving,
                    **items,
                },
            )
            messages.append(
                Decision(
                    unit_key,
                    None,
                    MessageKind.recommendation,
                    "",
                    outbox_key(MessageKind.recommendation, cfg.campaign.year, unit_key, digest),
                    message,
                )
            )
        enqueue(session, messages)
    approved = sum(1 for _, ok, _ in chosen if ok)
    return {"approved": approved, "excluded": len(chosen) - approved, "ignored": len(decisions) - len(chosen)}


@task(name="publish-pools", description="发布三级培育库清单", cache_policy=NO_CACHE)
def publish_pools(cfg: CampaignConfig, refused: list[tuple[str, str]] | None = None) -> dict[str, int]:
    """One table artifact per pool level (highest priority first) and a markdown count per unit, with
    the workbooks this run returned (`refused`: file, reason)."""
    rules = pool_rules(cfg)
    units = {u.key: u for u in cfg.units}
    with session_scope() as session:
        apps, recs = load_pool(session, cfg.campaign.year)
    members = apps.assign(pool=apps["own_unit"], pool_level=apps["own_level"], via="本级入库")
    approved = recs[recs["status"] == RecommendationStatus.approved]
    lifted = apps.merge(approved, left_on="id", right_on="application_id", suffixes=("", "_rec"))
    lifted = lifted.assign(
        pool=lifted["to_unit"],
        pool_level=lifted["to_level"],
        via="由" + lifted["from_unit"].map(lambda k: units[k].name) + "推荐",
    )
    columns = [*apps.columns, "pool", "pool_level", "via"]
    everyone = pd.concat([members[columns], lifted[columns]], ignore_index=True)
    pending = recs[recs["status"] == RecommendationStatus.proposed].set_index("application_id")["to_level"]
    counts: dict[str, int] = {}
    lines = [
        f"# {cfg.campaign.year} 年三级培育库",
        "",
        "| 库级 | 单位 | 项目数 | 其中下级推荐 |",
        "|---|---|---|---|",
    ]
    for level in (Level.province, Level.city, Level.county):
        pool = everyone[everyone["pool_level"] == level.value].sort_values(
            ["priority", "commended", "id"], ascending=[False, False, True]
        )
        counts[level.value] = len(pool)
        for unit_key, group in pool.groupby("pool", sort=True):
            lines.append(
                f"| {LEVEL_LABELS[level]} | {units[unit_key].name} | {len(group)} | {int((group['via'] != '本级入库').sum())} |"
            )
        shown = pool.head(rules.artifact_rows)
        table = [
            {
                "培育库": units[r["pool"]].name,
                "项目名称": r["project_name"],
                "申报主体": r["entity_name"],
                "所在县（市、区）": units[r["region_key"]].name,
                "优先分": round(float(r["priority"]), 2),
                "政策倾斜": tilt_labels(pd.Series(r)),
                "三个助力方向": r["directions"],
                "带动创业": int(r["entrepreneurs_driven"]),
                "吸纳就业": int(r["jobs"]),
                "来源": r["via"],
                "推荐状态": "拟推荐上级，待审批"
                if r["id"] in pending.index and r["level"] == r["pool_level"]
                else "",
            }
            for r in shown.to_dict("records")
        ]
        note = f"共 {len(pool)} 项，按优先分从高到低" + (
            f"，显示前 {len(shown)} 项" if len(shown) < len(pool) else ""
        )
        publish_table(
            f"pool-{level.value}",
            table,
            year=cfg.campaign.year,
            description=f"{LEVEL_LABELS[level]}培育库：{note}。优先分 = 政策倾斜权重之和 + 助力方向数 × {rules.direction_weight:g}（权重见年度配置）。",
        )
    if refused:
        lines += ["", f"**本次运行退回 {len(refused)} 个文件**（已通知报送单位）：", ""]
        lines += [f"- {markdown.text(file)}：{markdown.text(reason)}" for file, reason in refused]
    create_markdown_artifact(
        key="pool-summary", markdown="\n".join(lines), description="三级培育库各单位项目数"
    )
    return counts
