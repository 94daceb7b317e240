"""The incubation pool's side effects: take in application workbooks, propose and decide recommendations,
publish each pool. The rules themselves are in models/applications.py and models/pool.py.

Nothing is lost: a workbook is archived unchanged under its hash before anything is read; good rows
are stored even when others fail; bad rows go back to the sender as an error workbook attached to
the result message; the same file twice changes nothing; a corrected resubmission (same credit code
and project name) updates the application instead of adding one. One transaction per workbook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, select

from config import CampaignConfig
from config.schema import LEVEL_LABELS, Level, PoolRules, Unit
from config.settings import get_settings
from models.applications import COLUMNS, EXPECTED_HEADERS, CheckContext, check_applications
from models.clock import local_date
from models.db import insert_ignoring_duplicates, session_scope, upsert
from models.errors import ConfigError, ConfigProblem, SubmissionError
from models.messages import render
from models.planning import Decision
from models.pool import RANK, Hierarchy, derive, proposals, tilt_labels
from models.submissions import identify_unit
from models.tables import (
    IntakeFile,
    MessageKind,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
)
from models.workbook import ROW, read_table
from tasks.intake import archive, refuse_file, sha256_of
from tasks.notify import enqueue
from tasks.workbooks import write_error_workbook

OBLIGATION = "pool_intake"
MESSAGE_ITEMS = 20  # errors / refusals listed in a message; the error workbook has all of them

# What is stored of a checked row (personal data only masked), and what identifies it.
IDENTITY = ["credit_code", "project_name"]
FROM_SHEET = [c.field for c in COLUMNS if c.field not in ("leader_id", "phone", "region_key")]
DERIVED = ["poverty_employment", "key_county", "priority", "level", "pool_unit", "admitted", "admission_note"]
STORED = [*FROM_SHEET, "leader_id_masked", "phone_masked", "region_key", *DERIVED]


def pool_rules(cfg: CampaignConfig) -> PoolRules:
    if cfg.campaign.pool is None:
        raise ConfigError(
            f"campaigns/{cfg.campaign.year}.yaml",
            [
                ConfigProblem(
                    "pool", "the incubation pool has no rules (admission bars, weights) in this campaign"
                )
            ],
        )
    return cfg.campaign.pool


def _empty_summary(path: Path) -> dict[str, Any]:
    return {
        "file": path.name,
        "unit": None,
        "rows_read": 0,
        "admitted": 0,
        "not_admitted": 0,
        "updated": 0,
        "duplicates": 0,
        "rejected": 0,
        "errors": [],
        "warnings": [],
        "error_workbook": None,
    }


def _issue_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    ordered = frame.sort_values(ROW, kind="stable")
    return [
        {"row": int(r[ROW]), "column": r["列"], "value": str(r["值"]), "reason": r["原因"]}
        for r in ordered.to_dict("records")
    ]


def brief(summary: dict[str, Any], items: int = MESSAGE_ITEMS) -> dict[str, Any]:
    """A workbook's summary for the run's record: counts, and only the first errors and warnings."""
    short = dict(summary)
    for key in ("errors", "warnings"):
        short[f"{key}_total"] = len(summary[key])
        short[key] = summary[key][:items]
    return short


def _upsert_applications(
    session: Session, apps: pd.DataFrame, *, year: int, file_id: int, sender: str, received_at: dt.datetime
) -> tuple[dict[str, int], pd.DataFrame]:
    """Insert new applications, update changed ones, leave identical ones alone. Set-based.

    Returns the counts and the rows written (new or changed).
    """
    frame = apps.copy()
    frame["leader_id_masked"] = frame["leader_id"].str.slice_replace(6, -4, "*" * 8)
    frame["phone_masked"] = frame["phone"].str.slice_replace(3, -4, "****")
    frame = frame[[*STORED, ROW]]
    frame["content_hash"] = pd.util.hash_pandas_object(frame[STORED], index=False).astype(str)
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    stored = pd.DataFrame(
        session.execute(
            sa.select(table.c.credit_code, table.c.project_name, table.c.content_hash).where(
                table.c.year == year, table.c.credit_code.in_(frame["credit_code"].unique().tolist())
            )
        ).all(),
        columns=[*IDENTITY, "old_hash"],
    )
    merged = frame.merge(stored, on=IDENTITY, how="left")
    new = merged["old_hash"].isna()
    changed = ~new & (merged["old_hash"] != merged["content_hash"])
    counts = {
        "admitted": int((new & merged["admitted"]).sum()),
        "not_admitted": int((new & ~merged["admitted"]).sum()),
        "updated": int(changed.sum()),
        "duplicates": int((~new & ~changed).sum()),
    }
    write = merged[new | changed].drop(columns=["old_hash"]).rename(columns={ROW: "source_row"})
    if write.empty:
        return counts, write
    constants = {"year": year, "submitted_by": sender, "source_file_id": file_id}
    constants |= {"received_at": received_at, "updated_at": received_at}
    refreshed = [*STORED, "content_hash", "submitted_by", "source_file_id", "source_row", "updated_at"]
    upsert(
        session,
        PoolApplication,
        write,
        unique=["year", *IDENTITY],
        update=refreshed,
        constants=constants,
        unless_equal="content_hash",
    )
    return counts, write


def take_in_workbook(
    cfg: CampaignConfig,
    path: Path,
    received_at: dt.datetime,
    *,
    sender: Unit | None = None,
    chunk_rows: int = 10_000,
) -> dict[str, Any]:
    """Take one application workbook in; returns the summary its sender is told (also the CLI's JSON)."""
    rules = pool_rules(cfg)
    hierarchy = Hierarchy.of(cfg.units)
    year = cfg.campaign.year
    ob = cfg.campaign.obligation(OBLIGATION)
    summary = _empty_summary(path)
    sha = sha256_of(path)
    sender = sender or identify_unit(path.name, list(cfg.units))
    summary["unit"] = sender.key if sender else None
    try:
        with session_scope() as session:
            seen = session.exec(
                select(IntakeFile).where(IntakeFile.obligation_key == OBLIGATION, IntakeFile.sha256 == sha)
            ).first()
            if seen is not None:
                rows = int(seen.counts.get("rows_read", 0))
                return summary | {
                    "unit": seen.unit_key,
                    "duplicate_file": True,
                    "first_received_at": seen.received_at.astimezone(
                        ZoneInfo(cfg.campaign.timezone)
                    ).isoformat(),
                    "rows_read": rows,
                    "duplicates": rows - int(seen.counts.get("rejected", 0)),
                }
            if sender is None:
                raise SubmissionError(
                    path.name,
                    "无法从文件名识别报送单位：文件名须以单位名称或行政区划代码开头，如“乾安县-培育库申报表.xlsx”",
                )
            table, chunks = read_table(path, EXPECTED_HEADERS, chunk_rows=chunk_rows)
            missing = [c.header for c in COLUMNS if c.required and c.field not in table.columns]
            if missing:
                raise SubmissionError(path.name, f"缺少必填列：{'、'.join(missing)}（请使用发布的模板）")
            archived = archive(path, sha, str(year), OBLIGATION, sender.key)
            record = IntakeFile(
                year=year,
                obligation_key=OBLIGATION,
                sha256=sha,
                file_name=path.name,
                unit_key=sender.key,
                received_at=received_at,
                archived_path=str(archived),
            )
            session.add(record)
            session.flush()
            assert record.id is not None
            application_date = local_date(received_at, cfg.campaign)
            ctx = CheckContext(
                regions=hierarchy.region_index(),
                allowed_regions=hierarchy.jurisdiction(sender.key),
                sender_name=sender.name,
                application_date=application_date,
            )
            bad_rows, errors, warnings, refused = [], [], [], []
            for chunk in chunks:
                checked = check_applications(chunk, ctx)
                summary["rows_read"] += len(chunk)
                summary["rejected"] += len(checked.bad)
                summary["duplicates"] += checked.repeats  # the same application twice in the file
                errors.append(checked.errors)
                warnings.append(checked.warnings)
                if not checked.bad.empty:
                    bad_rows.append(checked.bad)
                if checked.good.empty:
                    continue
                apps = derive(checked.good, rules, hierarchy, application_date)
                counts, written = _upsert_applications(
                    session, apps, year=year, file_id=record.id, sender=sender.key, received_at=received_at
                )
                for key, n in counts.items():
                    summary[key] += n
                below = written[~written["admitted"]]
                if len(refused) < MESSAGE_ITEMS and not below.empty:
                    refused += [
                        {
                            "row": int(r["source_row"]),
                            "project": r["project_name"],
                            "note": r["admission_note"],
                        }
                        for r in below.head(MESSAGE_ITEMS - len(refused)).to_dict("records")
                    ]
            if summary["rows_read"] == 0:
                raise SubmissionError(path.name, "表中没有数据行（表头以下为空）")
            all_errors = pd.concat(errors, ignore_index=True)
            all_warnings = pd.concat(warnings, ignore_index=True)
            summary["errors"] = _issue_records(all_errors)
            summary["warnings"] = _issue_records(all_warnings)
            if bad_rows:
                target = (
                    get_settings().reports
                    / str(year)
                    / OBLIGATION
                    / sender.key
                    / f"{sha[:12]}-{path.stem}-错误清单.xlsx"
                )
                write_error_workbook(target, pd.concat(bad_rows, ignore_index=True), all_errors)
                summary["error_workbook"] = str(target)
                record.error_workbook = str(target)
            counted = {
                k: summary[k]
                for k in ("rows_read", "admitted", "not_admitted", "updated", "duplicates", "rejected")
            }
            record.counts = counted
            session.add(record)
            message = render(
                "intake_result",
                {
                    "unit": sender,
                    "file_name": path.name,
                    "received_at": received_at,
                    "counts": counted,
                    "not_admitted": refused,
                    "not_admitted_more": max(0, summary["not_admitted"] - len(refused)),
                    "errors": summary["errors"][:MESSAGE_ITEMS],
                    "errors_more": max(0, len(all_errors) - MESSAGE_ITEMS),
                    "warnings": summary["warnings"][:MESSAGE_ITEMS],
                    "attachment_name": Path(summary["error_workbook"]).name
                    if summary["error_workbook"]
                    else None,
                },
            )
            enqueue(
                session,
                [
                    Decision(
                        sender.key,
                        None,
                        MessageKind.intake_result,
                        "",
                        f"intake_result:{OBLIGATION}:{sha}",
                        message,
                        summary["error_workbook"],
                    )
                ],
            )
    except SubmissionError as exc:
        # The file could not be read (here or part-way through): its transaction rolled back, so
        # nothing of it is kept but the file itself, set aside with the reason; the sender is told.
        with session_scope() as session:
            kept = refuse_file(
                session,
                cfg,
                path=path,
                sha=sha,
                ob=ob,
                unit=sender,
                reason=exc.reason,
                received_at=received_at,
            )
        return _empty_summary(path) | {"unit": summary["unit"], "refused": exc.reason, "kept_at": kept}
    return summary


@task(name="take-in-workbook", description="培育库申报表收件、校验、入库", cache_policy=NO_CACHE, retries=1)
def take_in_workbook_task(
    cfg: CampaignConfig, path: Path, received_at: dt.datetime, remove: bool
) -> dict[str, Any]:
    summary = take_in_workbook(cfg, path, received_at)
    if remove:  # after the commit: the archive and the database hold it now
        path.unlink(missing_ok=True)
    return summary


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
    """Admitted applications, each with the highest pool it has reached; and all recommendations."""
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    apps = pd.DataFrame(
        session.execute(
            sa.select(*(table.c[c] for c in POOL_COLUMNS)).where(table.c.year == year, table.c.admitted)
        ).all(),
        columns=POOL_COLUMNS,
    )
    rec_cols = ["id", "application_id", "from_unit", "to_unit", "to_level", "status", "reason", "decided_by"]
    rtable = Recommendation.__table__  # type: ignore[attr-defined]
    recs = pd.DataFrame(
        session.execute(sa.select(*(rtable.c[c] for c in rec_cols)).where(rtable.c.year == year)).all(),
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
    rules = pool_rules(cfg)
    hierarchy = Hierarchy.of(cfg.units)
    with session_scope() as session:
        apps, recs = load_pool(session, cfg.campaign.year)
        decided = set(zip(recs["application_id"], recs["to_level"], strict=True))
        candidates = proposals(apps, rules, hierarchy, today)
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
                    f"recommendation:{unit_key}:{digest}",
                    message,
                )
            )
        enqueue(session, messages)
    approved = sum(1 for _, ok, _ in chosen if ok)
    return {"approved": approved, "excluded": len(chosen) - approved, "ignored": len(decisions) - len(chosen)}


def ask_operator(
    cfg: CampaignConfig,
    waiting: list[dict[str, Any]],
    today: dt.date,
    *,
    timed_out: bool,
    run_url: str | None,
) -> int:
    """Tell the province that proposals wait for its decision: when a run pauses for it, and again when
    that run stopped waiting. At most one of each a day."""
    if not waiting:
        return 0
    province = next(u for u in cfg.units if u.level is Level.province)
    step = "timed_out" if timed_out else "waiting"
    message = render(
        "approval_due",
        {
            "unit": province,
            "count": len(waiting),
            "oldest": min(local_date(p["proposed_at"], cfg.campaign) for p in waiting),
            "proposals": waiting[:MESSAGE_ITEMS],
            "more": max(0, len(waiting) - MESSAGE_ITEMS),
            "timed_out": timed_out,
            "run_url": run_url,
        },
    )
    with session_scope() as session:
        return enqueue(
            session,
            [
                Decision(
                    province.key,
                    None,
                    MessageKind.approval_due,
                    step,
                    f"approval_due:{today.isoformat()}:{step}",
                    message,
                )
            ],
        )


@task(name="publish-pools", description="发布三级培育库清单", cache_policy=NO_CACHE)
def publish_pools(cfg: CampaignConfig) -> dict[str, int]:
    """One table artifact per pool level (highest priority first) and a markdown count per unit."""
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
            ["priority", "id"], ascending=[False, True]
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
        create_table_artifact(
            key=f"pool-{level.value}",
            table=table,
            description=f"{LEVEL_LABELS[level]}培育库：{note}。优先分 = 政策倾斜权重之和 + 助力方向数 × {rules.direction_weight:g}（权重见年度配置）。",
        )
    create_markdown_artifact(
        key="pool-summary", markdown="\n".join(lines), description="三级培育库各单位项目数"
    )
    return counts
