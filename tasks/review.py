"""三(六) Base review: its side effects. The rules are in models/review.py.

- Cities and counties decide their own 评审认定: their naming list (基地命名名单, a sheet like every
  other, through tasks/sheets.py) is checked and recorded here — its bases named, the ones going up
  recommended into the upper pool (包保 and quarterly visits follow), its review obligation met (10-31
  is met by the naming, not by scores) and the unit above told what came up and what was kept back
  and why.
- Expert score sheets: a reviewing unit scores the projects of its own pool. `review_progress` checks
  each unit's scoring as a whole (an incomplete one is told why, once per distinct set of reasons) and
  ranks a complete one into the `base` table: for a city or county a reference ranking; for the
  province its own round, proposed within the quota for its operator (`decide_namings`). Units already
  decided are not re-ranked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, SQLModel

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import LEVEL_LABELS, Level, ReviewRules, Unit
from models.clock import moment
from models.db import insert_ignoring_duplicates, session_scope, upsert
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.pool import TILT_COLUMNS, Hierarchy, upper_bar_notes
from models.review import (
    NamingChoice,
    check_choices,
    expert_scores,
    incomplete,
    naming_sheet,
    quota_of,
    quota_problem,
    rank,
    score_sheet,
)
from models.sheets import CheckContext
from models.tables import (
    BaseSource,
    BaseStatus,
    ExpertScore,
    MessageKind,
    NamedBase,
    ObligationInstance,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
    Submission,
)
from models.workbook import ROW
from tasks.artifacts import publish_table
from tasks.notify import enqueue
from tasks.pool import load_pool, pool_rules
from tasks.records import COUNTS, query_frame, settle, store_records
from tasks.sheets import MESSAGE_ITEMS, SheetIntake, Stored, StoreRequest
from tasks.standards import admission_rules
from tasks.unit_of_work import task


def review_of(cfg: CampaignConfig) -> ReviewRules:
    review: ReviewRules = cfg.require("review", "criteria, experts per project, quotas and tiers")
    return review


# ------------------------------------------------------------------ taking in scores
def _own_pool(session: Session, cfg: CampaignConfig, sender: Unit, on: dt.date) -> CheckContext:
    """A unit reviews the projects of its own pool: admitted there, or recommended into it from below."""
    hierarchy = Hierarchy.of(cfg.units)
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    rec = Recommendation.__table__  # type: ignore[attr-defined]
    recommended_in = sa.select(rec.c.application_id).where(  # in any year up to this one
        rec.c.year <= cfg.campaign.year,
        rec.c.status == RecommendationStatus.approved.value,
        rec.c.to_unit == sender.key,
    )
    rows = session.execute(
        sa.select(table.c.credit_code, table.c.project_name, table.c.id, table.c.entity_name).where(
            table.c.year <= cfg.campaign.year,
            table.c.admitted.is_(True),
            sa.or_(table.c.pool_unit == sender.key, table.c.id.in_(recommended_in)),
        )
    ).all()
    return CheckContext(
        regions=hierarchy.region_index(),
        allowed_regions=hierarchy.jurisdiction(sender.key),
        sender_name=sender.name,
        application_date=on,
        units=hierarchy.region_index(leaves_only=False),
        earliest=cfg.campaign.application_window.start,
        projects={(code, name): pid for code, name, pid, _ in rows},
        entities={pid: entity for _, _, pid, entity in rows},
        sender_key=sender.key,
    )


def score_intake(cfg: CampaignConfig) -> SheetIntake:
    review = review_of(cfg)
    levels = {u.key: u.level for u in cfg.units}
    return SheetIntake(
        sheet=score_sheet(review, cfg.campaign.application_window, levels),
        obligation_key=review.scores_obligation,
        serves=tuple(k for k in (review.provincial_scores_obligation,) if k),
        topic="基地评审",
        count_labels=COUNTS,
        context=_own_pool,
        store=store_records(
            ExpertScore,
            ["unit_key", "credit_code", "project_name", "expert_name", "criterion"],
            ["application_id", "expert_employer", "score", "materials_from", "materials_to"],
            lambda req: {"unit_key": req.sender.key},  # a unit reviews its own pool
        ),
        resubmit_hint="同一专家对同一项目同一评分项重报将更新原分数",
    )


# ------------------------------------------------------------------ a city's or county's naming list
NAMING_FOLDER = "naming_list"
NAMED_BY_LIST = "评审命名后推荐"  # the reason of a recommendation a naming list made


def _naming_context(session: Session, cfg: CampaignConfig, sender: Unit, on: dt.date) -> CheckContext:
    """The sender's own pool, and for each of its projects whether it meets the bar of the pool above."""
    if sender.reports_to is None:
        raise SubmissionError(
            sender.name, "省级基地由省级评审命名（专家评分表，省级经办人审批），无需报送基地命名名单"
        )
    ctx = _own_pool(session, cfg, sender, on)
    ids = sorted(ctx.projects.values())
    notes = dict(zip(ids, _upper_bars(session, cfg, ids, [sender.key] * len(ids)), strict=True))
    base = NamedBase.__table__  # type: ignore[attr-defined]
    earlier = session.execute(  # bases outlive the year: one named at this level before stays named
        sa.select(base.c.application_id, base.c.year, base.c.unit_key).where(
            base.c.year < cfg.campaign.year,
            base.c.level == sender.level.value,
            base.c.status == BaseStatus.named.value,
            base.c.application_id.in_(ids),
        )
    ).all()
    named_before = {
        int(a): f"已于 {y} 年由{cfg.unit(u).name}命名为{LEVEL_LABELS[sender.level]}基地"
        for a, y, u in earlier
    }
    return dataclasses.replace(
        ctx, upper_bar=notes, upper_name=cfg.unit(sender.reports_to).name, named_before=named_before
    )


def _store_namings(session: Session, req: StoreRequest) -> Stored:
    """Record a unit's naming list: it replaces the unit's earlier list of the year, whole."""
    cfg, sender, rows = req.cfg, req.sender, req.rows
    review = review_of(cfg)
    # an earlier year's base on the list is only sent up: no naming of this year, no quota
    earlier = rows["application_id"].map(lambda a: int(a) in req.ctx.named_before).astype(bool)
    going_up_only = rows[earlier]
    rows = rows[~earlier]
    problem = quota_problem(review, sender, len(rows) + req.rejected)
    if problem:
        raise SubmissionError(sender.name, problem)
    # A list with errors is not the unit's whole decision: its good rows are recorded, and the bases
    # and recommendations it does not name stay as they stood until the corrected list comes.
    whole = req.rejected == 0
    year = cfg.campaign.year
    amounts = {t.name: t.amount_yuan for t in review.tiers.get(sender.level, ())}
    upper = sender.reports_to
    assert upper is not None  # refused in the context
    recommend = rows["recommend"].astype(bool)
    # 应推尽推: a reason kept only where the base meets the upper bar (the check asked for it there)
    qualifies = rows["application_id"].map(lambda a: req.ctx.upper_bar.get(int(a)) == "").astype(bool)
    named = pd.DataFrame(
        {
            "application_id": rows["application_id"].astype(int),
            "level": sender.level.value,
            "status": BaseStatus.named.value,
            "tier": rows["tier"],
            "amount_yuan": rows["tier"].map(amounts).fillna(0.0).astype(float),
            "recommended_to": pd.Series(
                [upper if r else None for r in recommend], index=rows.index, dtype=object
            ),
            "decree_no": rows["decree_no"].str.strip(),
            "kept_reason": rows["kept_reason"].fillna("").str.strip().where(~recommend & qualifies, ""),
            "reason": "",
        }
    )
    table = NamedBase.__table__  # type: ignore[attr-defined]
    ids = named["application_id"].tolist()
    decided = {
        "decided_by": f"{sender.name}（命名名单）",
        "decided_at": req.received_at,
        "source": BaseSource.naming_list.value,
        "source_file_id": req.file_id,
    }
    upsert(
        session,
        NamedBase,
        named,
        unique=["year", "unit_key", "application_id"],
        update=[c for c in named.columns if c != "application_id"] + list(decided),
        constants={"year": year, "unit_key": sender.key, "ranked_at": req.received_at} | decided,
    )
    up_ids = named.loc[recommend.to_numpy(), "application_id"].tolist()
    up_ids += going_up_only["application_id"].astype(int).tolist()
    rec = Recommendation.__table__  # type: ignore[attr-defined]
    kept_up: list[str] = []
    if whole:
        # a base left off the new list is not named (its reference ranking, if any, stays)
        session.execute(
            sa.update(table)
            .where(table.c.year == year, table.c.unit_key == sender.key, table.c.application_id.notin_(ids))
            .values(
                status=BaseStatus.not_named.value, tier="", amount_yuan=0.0, recommended_to=None, **decided
            )
        )
        # withdrawn by the new list — unless the unit above already named the base: that stands
        acted_on = sa.select(table.c.application_id).where(
            table.c.unit_key == upper, table.c.status == BaseStatus.named.value
        )
        left_off = sa.and_(  # this list's unit's recommendations of this year the new list leaves off
            rec.c.year == year,
            rec.c.from_unit == sender.key,
            rec.c.reason == NAMED_BY_LIST,
            rec.c.status == RecommendationStatus.approved.value,
            rec.c.application_id.notin_(up_ids),
        )
        standing = session.execute(  # told, below: the withdrawal did not take
            sa.select(PoolApplication.project_name)  # type: ignore[call-overload]
            .join(rec, rec.c.application_id == PoolApplication.id)
            .where(left_off, rec.c.application_id.in_(acted_on))
        ).scalars()
        kept_up = sorted(standing)
        session.execute(
            sa.update(rec)
            .where(left_off, rec.c.application_id.notin_(acted_on))
            .values(status=RecommendationStatus.excluded.value, decided_at=req.received_at)
        )
    session.execute(  # put back by it, whatever year it was withdrawn in
        sa.update(rec)
        .where(
            rec.c.from_unit == sender.key,
            rec.c.status == RecommendationStatus.excluded.value,
            rec.c.application_id.in_(up_ids),
        )
        .values(
            status=RecommendationStatus.approved.value,
            year=year,
            decided_at=req.received_at,
            decided_by=decided["decided_by"],
            reason=NAMED_BY_LIST,
        )
    )
    # 逐级推荐: a base going up enters the upper pool as an approved recommendation, which starts its
    # 包保 and quarterly visits there (tasks/visits.py). One recommended in an earlier year stays as it is.
    insert_ignoring_duplicates(
        session,
        Recommendation,
        [
            {
                "year": year,
                "application_id": int(a),
                "from_unit": sender.key,
                "to_unit": upper,
                "to_level": cfg.unit(upper).level.value,
                "status": RecommendationStatus.approved.value,
                "proposed_at": req.received_at,
                "decided_at": req.received_at,
                "decided_by": decided["decided_by"],
                "reason": NAMED_BY_LIST,
            }
            for a in up_ids
        ],
        unique=["application_id", "to_level"],
    )
    settle_namings(session, cfg, req.received_at)
    going_up = pd.concat([rows[recommend.to_numpy()], going_up_only])
    notes = [
        {
            "row": int(r[ROW]),
            "subject": r["project_name"],
            "note": f"已推荐至{cfg.unit(upper).name}培育库，由本级主要领导包保，每季度走访一次（三(四)）",
        }
        for r in going_up.head(MESSAGE_ITEMS).to_dict("records")
    ]
    if whole and kept_up:
        notes.append(
            {
                "row": 0,
                "subject": "、".join(kept_up),
                "note": f"{cfg.unit(upper).name}已将其命名为本级基地，推荐不撤回（仍须包保、每季度走访）",
            }
        )
    if not whole:
        notes.append(
            {
                "row": 0,
                "subject": "注意",
                "note": "名单中有错误行：本次只登记了无误的行，其余原已登记的命名和推荐保持不变；请更正后重报完整的命名名单",
            }
        )
    return Stored(
        counts={
            "named": len(named),
            "recommended": len(up_ids),
            "kept": int((~recommend & qualifies).sum()),
        },
        notes=notes,
        noted=len(going_up),
        decisions=_result_messages(cfg, session, [sender.key], digest=req.file_id),
    )


def naming_intake(cfg: CampaignConfig) -> SheetIntake:
    review = review_of(cfg)
    return SheetIntake(
        sheet=naming_sheet(review, {u.key: u for u in cfg.units}),
        obligation_key=review.scores_obligation,
        folder=NAMING_FOLDER,
        topic="基地评审",
        count_labels=(("named", "命名基地"), ("recommended", "推荐上级"), ("kept", "符合上级条件未推荐")),
        context=_naming_context,
        store=_store_namings,
        notes_title="命名名单登记情况",
        resubmit_hint="每次报送完整的命名名单，后报的名单替换先报的",
    )


def settle_namings(session: Session, cfg: CampaignConfig, now: dt.datetime) -> int:
    """三(六) 10-31 is met by a unit's naming list (not by its scores): every city and county whose list
    of the year is recorded has done its 评审认定."""
    table = NamedBase.__table__  # type: ignore[attr-defined]
    counts = query_frame(
        session,
        sa.select(table.c.unit_key, sa.func.count())
        .where(
            table.c.year == cfg.campaign.year,
            table.c.source == BaseSource.naming_list.value,
            table.c.status == BaseStatus.named.value,
        )
        .group_by(table.c.unit_key),
        ["unit_key", "named"],
    )
    key = review_of(cfg).scores_obligation
    ob, sub = ObligationInstance.__table__, Submission.__table__  # type: ignore[attr-defined]
    recorded = session.execute(  # an operator's record (a unit with nothing to name says so offline)
        sa.select(ob.c.unit_key)
        .join(sub, sub.c.obligation_id == ob.c.id)
        .where(ob.c.year == cfg.campaign.year, ob.c.obligation_key == key)
        .distinct()
    ).scalars()
    offline = [u for u in recorded if u not in set(counts["unit_key"])]
    progress = pd.concat(
        [
            counts.assign(note="已报命名名单：命名 " + counts["named"].astype(str) + " 个"),
            pd.DataFrame({"unit_key": offline, "note": "已登记线下报送"}),
        ],
        ignore_index=True,
    ).assign(subject="", period=str(cfg.campaign.year), done=1)
    return settle(session, cfg, key, progress, now)


# ------------------------------------------------------------------ completeness, ranking
def _columns(session: Session, model: type[SQLModel], columns: list[str], *where: Any) -> pd.DataFrame:
    table = model.__table__  # type: ignore[attr-defined]
    return query_frame(session, sa.select(*(table.c[c] for c in columns)).where(*where), columns)


def _scores(session: Session, year: int) -> pd.DataFrame:
    columns = ["unit_key", "application_id", "expert_name", "criterion", "score"]
    return _columns(session, ExpertScore, columns, ExpertScore.year == year)  # type: ignore[arg-type]


def _bases(session: Session, year: int) -> pd.DataFrame:
    columns = ["id", "unit_key", "application_id", "status", "expert_score", "priority", "total", "rank"]
    return _columns(session, NamedBase, [*columns, "tier", "ranked_at"], NamedBase.year == year)  # type: ignore[arg-type]


def _applications(session: Session, ids: list[int]) -> pd.DataFrame:
    columns = ["id", "project_name", "entity_name", "priority", *TILT_COLUMNS.values()]
    return _columns(session, PoolApplication, columns, PoolApplication.id.in_(ids)).set_index("id")  # type: ignore[union-attr]


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple[Any, ...]]:
    """A ranking's rows as plain values, to compare a stored ranking with a new one."""
    values = [
        frame[c].astype(float).tolist()
        if pd.api.types.is_numeric_dtype(frame[c])
        else frame[c].astype(str).tolist()
        for c in columns
    ]
    return sorted(zip(*values, strict=True))


def _incomplete_message(cfg: CampaignConfig, unit: Unit, reasons: pd.DataFrame, names: pd.Series) -> Decision:
    listed = [
        {"project": names.get(a, str(a)), "reason": r}
        for a, r in zip(reasons["application_id"], reasons["reason"], strict=True)
    ]
    digest = hashlib.sha256("|".join(f"{x['project']}:{x['reason']}" for x in listed).encode()).hexdigest()[
        :16
    ]
    message = render(
        "review_incomplete",
        {
            "unit": unit,
            "items": listed[:MESSAGE_ITEMS],
            "more": max(0, len(listed) - MESSAGE_ITEMS),
            "experts": review_of(cfg).experts_per_project,
        },
    )
    # once per distinct set of reasons: a resubmission that changes nothing sends nothing
    return Decision(
        unit.key,
        None,
        MessageKind.review_result,
        "incomplete",
        outbox_key(MessageKind.review_result, cfg.campaign.year, unit.key, "incomplete", digest),
        message,
    )


@task(name="review-progress", description="核对专家评分是否齐全，排名并按名额拟命名", cache_policy=NO_CACHE)
def review_progress(cfg: CampaignConfig, today: dt.date) -> dict[str, int]:
    """Check every unit's scoring, settle its review obligation and rank the complete, undecided ones."""
    review = review_of(cfg)
    year = cfg.campaign.year
    units = {u.key: u for u in cfg.units}
    now = moment(today, cfg.campaign)
    counts = {"complete": 0, "incomplete": 0, "ranked": 0, "told": 0}
    with session_scope() as session:
        scores = _scores(session, year)
        # a project that left the unit's pool (its recommendation withdrawn) is no longer reviewed there
        scores = scores[_in_own_pool(session, year, scores)]
        bases = _bases(session, year)
        decided = set(bases.loc[bases["status"].isin([BaseStatus.named, BaseStatus.not_named]), "unit_key"])
        apps = _applications(session, sorted({int(a) for a in scores["application_id"]}))
        done: list[dict[str, Any]] = []
        ranked: list[pd.DataFrame] = []
        stale: list[str] = []  # units whose ranking is replaced, or withdrawn (scoring incomplete again)
        told: list[Decision] = []
        for unit_key, unit_scores in scores.groupby("unit_key", sort=True):
            unit = units[str(unit_key)]
            previous = bases[bases["unit_key"] == unit.key]
            reasons = incomplete(unit_scores, review, unit.level)
            if not reasons.empty:
                counts["incomplete"] += 1
                told.append(_incomplete_message(cfg, unit, reasons, apps["project_name"]))
                if unit.key not in decided and not previous.empty:
                    stale.append(unit.key)
                continue
            counts["complete"] += 1
            done.append({"unit_key": unit.key, "subject": "", "period": str(year), "done": 1})
            if unit.key in decided:
                continue
            aggregated = expert_scores(unit_scores, review, unit.level)
            projects = pd.DataFrame(
                {
                    "application_id": aggregated.index.astype(int),
                    "expert_score": aggregated.to_numpy(),
                    "priority": apps.loc[aggregated.index, "priority"].to_numpy(),
                    **{
                        TILT_COLUMNS[t]: apps.loc[aggregated.index, TILT_COLUMNS[t]].astype(bool).to_numpy()
                        for t in review.tie_breakers
                    },
                }
            )
            ranking = rank(projects, review, unit.level, quota_of(review, unit.key, unit.level))
            if unit.level is not Level.province:  # a reference for the unit: the naming is its own
                ranking = ranking.assign(proposed=False, tier="", amount_yuan=0.0)
            same = ["application_id", "total", "rank", "tier"]
            if _rows(previous, same) == _rows(ranking, same):
                continue  # unchanged: its rows (and the ids a waiting approval form holds) stay
            stale.append(unit.key)
            ranked.append(ranking.assign(unit_key=unit.key, level=unit.level.value))
        # a unit whose every scored project left its pool: its ranking goes (nothing to propose)
        stale += sorted(set(bases["unit_key"]) - set(scores["unit_key"]) - decided)
        progress = pd.DataFrame(done, columns=["unit_key", "subject", "period", "done"])
        if review.provincial_scores_obligation:  # the province's round is met by its complete scoring
            provincial = progress["unit_key"].map(lambda k: units[k].level is Level.province)
            settle(session, cfg, review.provincial_scores_obligation, progress[provincial.astype(bool)], now)
        settle_namings(session, cfg, now)  # a city's or county's, by its naming list
        table = NamedBase.__table__  # type: ignore[attr-defined]
        if stale:
            session.execute(sa.delete(table).where(table.c.year == year, table.c.unit_key.in_(stale)))
        if ranked:
            frame = pd.concat(ranked, ignore_index=True)
            frame["status"] = frame["proposed"].map(
                {True: BaseStatus.proposed.value, False: BaseStatus.ranked.value}
            )
            columns = ["unit_key", "level", "application_id", "expert_score", "priority", "total", "rank"]
            columns += ["status", "tier", "amount_yuan"]
            upsert(
                session,
                NamedBase,
                frame[columns],
                unique=["year", "unit_key", "application_id"],
                update=[c for c in columns if c not in ("unit_key", "application_id")],
                constants={"year": year, "ranked_at": now},
            )
            counts["ranked"] = len(frame)
        counts["told"] = enqueue(session, told)
    return counts


def _in_own_pool(session: Session, year: int, rows: pd.DataFrame) -> pd.Series:
    """Per row (unit_key, application_id): whether the project is in that unit's pool in `year` —
    admitted there, or recommended into it and not withdrawn."""
    apps, recs = load_pool(session, year)
    approved = recs[recs["status"] == RecommendationStatus.approved]
    members = set(zip(apps["own_unit"], apps["id"], strict=True))
    members |= set(zip(approved["to_unit"], approved["application_id"], strict=True))
    pairs = zip(rows["unit_key"], rows["application_id"].astype(int), strict=True)
    return pd.Series([pair in members for pair in pairs], index=rows.index, dtype=bool)


# ------------------------------------------------------------------ the operator's decision
def waiting(cfg: CampaignConfig) -> list[dict[str, Any]]:
    """Every ranked project of the units waiting for a decision, in ranking order, with the defaults."""
    review = review_of(cfg)
    units = {u.key: u for u in cfg.units}
    with session_scope() as session:
        bases = _bases(session, cfg.campaign.year)
        # only the province's own round waits for its operator: cities and counties decide their own
        provincial = bases["unit_key"].map(lambda k: units[k].level is Level.province)
        open_units = set(bases.loc[provincial & (bases["status"] == BaseStatus.proposed), "unit_key"])
        rows = bases[bases["unit_key"].isin(open_units)].sort_values(["unit_key", "rank"])
        if rows.empty:
            return []
        apps = _applications(session, [int(a) for a in rows["application_id"]])
        notes = _upper_bars(
            session, cfg, rows["application_id"].astype(int).tolist(), rows["unit_key"].tolist()
        )
        upper = dict(zip(rows["id"].astype(int), notes, strict=True))
    out = []
    for r in rows.to_dict("records"):
        unit = units[r["unit_key"]]
        proposed = r["status"] == BaseStatus.proposed
        note = upper.get(int(r["id"]))
        out.append(
            {
                "id": int(r["id"]),
                "unit_key": unit.key,
                "application_id": int(r["application_id"]),
                "route": f"{unit.name}（{LEVEL_LABELS[unit.level]}，名额 {quota_of(review, unit.key, unit.level)}）",
                "rank": int(r["rank"]),
                "project": apps.loc[r["application_id"], "project_name"],
                "entity": apps.loc[r["application_id"], "entity_name"],
                "expert_score": float(r["expert_score"]),
                "priority": float(r["priority"]),
                "total": float(r["total"]),
                "name": proposed,
                "tier": r["tier"],
                # 应推尽推: every base proposed for naming that meets the upper pool's bar goes up
                "recommend": proposed and note == "",
                "upper_bar": "—" if note is None else ("符合" if note == "" else f"不符合：{note}"),
                "meets_upper_bar": note == "",
                "proposed_at": r["ranked_at"],
            }
        )
    return out


def _upper_bars(
    session: Session, cfg: CampaignConfig, ids: list[int], unit_keys: list[str]
) -> list[str | None]:
    """Per project (`ids`) named by a unit (`unit_keys`): "" if it meets the bar of the pool above that
    unit, what falls short otherwise, None where there is no pool above (the province)."""
    if not ids:
        return []
    rules = admission_rules(session, cfg, pool_rules(cfg))
    pool, _ = load_pool(session, cfg.campaign.year)
    projects = pool.set_index("id").reindex(ids).assign(pool_unit=unit_keys).reset_index(drop=True)
    on = cfg.campaign.application_date  # 三(六) the review's 申请日
    return list(upper_bar_notes(projects, rules, Hierarchy.of(cfg.units), on))


def decide_namings(
    cfg: CampaignConfig,
    rows: list[dict[str, Any]],
    choices: list[NamingChoice],
    *,
    decided_by: str,
    decided_at: dt.datetime,
    flow_run_id: str | None,
) -> dict[str, Any]:
    """Apply the operator's answer to the units it is valid for; tell each unit and the unit above."""
    review = review_of(cfg)
    units = {u.key: u for u in cfg.units}
    problems = check_choices(review_of(cfg), {u.key: u for u in cfg.units}, rows, choices)
    by_id = {r["id"]: r for r in rows}
    chosen = {
        c.base_id: c for c in choices if c.base_id in by_id and by_id[c.base_id]["unit_key"] not in problems
    }
    if not chosen:
        return {"named": 0, "not_named": 0, "refused": problems}
    amounts = {(lvl, t.name): t.amount_yuan for lvl, ts in review.tiers.items() for t in ts}
    updates = []
    for base_id, c in chosen.items():
        unit = units[by_id[base_id]["unit_key"]]
        updates.append(
            {
                "b_id": base_id,
                "b_status": BaseStatus.named.value if c.name else BaseStatus.not_named.value,
                "b_tier": c.tier if c.name else "",
                "b_amount": amounts.get((unit.level, c.tier), 0.0) if c.name else 0.0,
                "b_to": unit.reports_to if c.name and c.recommend else None,
                "b_reason": c.reason.strip(),
            }
        )
    table = NamedBase.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        session.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(
                status=sa.bindparam("b_status"),
                tier=sa.bindparam("b_tier"),
                amount_yuan=sa.bindparam("b_amount"),
                recommended_to=sa.bindparam("b_to"),
                reason=sa.bindparam("b_reason"),
                decided_by=decided_by,
                decided_at=decided_at,
                flow_run_id=flow_run_id,
            ),
            updates,
        )
        # 逐级推荐: a named and recommended base enters the upper pool, as an approved recommendation,
        # which starts its 包保 and quarterly visits there (tasks/visits.py).
        recommended = [
            {
                "year": cfg.campaign.year,
                "application_id": int(by_id[u["b_id"]]["application_id"]),
                "from_unit": by_id[u["b_id"]]["unit_key"],
                "to_unit": u["b_to"],
                "to_level": units[u["b_to"]].level.value,
                "status": RecommendationStatus.approved.value,
                "proposed_at": decided_at,
                "decided_at": decided_at,
                "decided_by": decided_by,
                "reason": "评审命名后推荐",
                "flow_run_id": flow_run_id,
            }
            for u in updates
            if u["b_to"] is not None
        ]
        insert_ignoring_duplicates(
            session, Recommendation, recommended, unique=["application_id", "to_level"]
        )
        decided_units = sorted({by_id[i]["unit_key"] for i in chosen})
        enqueue(session, _result_messages(cfg, session, decided_units))
    named = sum(1 for u in updates if u["b_status"] == BaseStatus.named)
    return {"named": named, "not_named": len(updates) - named, "refused": problems}


def _named_frame(session: Session, year: int, unit_keys: list[str] | None = None) -> pd.DataFrame:
    base = NamedBase.__table__  # type: ignore[attr-defined]
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    columns = ["unit_key", "application_id", "rank", "total", "tier", "amount_yuan", "recommended_to"]
    columns += ["status", "decree_no", "kept_reason", "source"]
    query = (
        sa.select(*(base.c[c] for c in columns), app.c.project_name, app.c.entity_name)
        .join(app, app.c.id == base.c.application_id)
        .where(base.c.year == year)
        .order_by(base.c.unit_key, base.c.rank, app.c.project_name)
    )
    if unit_keys is not None:
        query = query.where(base.c.unit_key.in_(unit_keys))
    return pd.DataFrame(session.execute(query).all(), columns=[*columns, "project", "entity"])


def _result_messages(
    cfg: CampaignConfig, session: Session, unit_keys: list[str], *, digest: object = ""
) -> list[Decision]:
    """What a decided review tells. A naming list: the unit above, what came up to it and what was kept
    back, with the reason (应推尽推). The province's round: each recommending unit, which of the bases it
    recommended were named provincial bases."""
    units = {u.key: u for u in cfg.units}
    year = cfg.campaign.year
    frame = _named_frame(session, year, unit_keys)
    named = frame[frame["status"] == BaseStatus.named].assign(
        from_unit=lambda f: f["unit_key"].map(lambda k: units[k].name)
    )
    out: list[Decision] = []
    for key in unit_keys:
        unit = units[key]
        mine = named[named["unit_key"] == key]
        if unit.reports_to is None:  # the province's round
            rec = Recommendation.__table__  # type: ignore[attr-defined]
            senders = query_frame(
                session,
                sa.select(rec.c.application_id, rec.c.from_unit).where(
                    rec.c.to_unit == key,
                    rec.c.status == RecommendationStatus.approved.value,
                    rec.c.application_id.in_([int(a) for a in mine["application_id"]]),
                ),
                ["application_id", "from_unit"],
            )
            told = mine.merge(senders, on="application_id", suffixes=("_base", ""))
            for sender, group in told.groupby("from_unit"):
                message = render(
                    "review_result",
                    {
                        "unit": units[str(sender)],
                        "year": year,
                        "decider": unit,
                        "bases": group.to_dict("records"),
                    },
                )
                out.append(
                    Decision(
                        str(sender),
                        None,
                        MessageKind.review_result,
                        "named",
                        outbox_key(MessageKind.review_result, year, key, "named", sender),
                        message,
                    )
                )
            continue
        upper = units[unit.reports_to]
        rec = Recommendation.__table__  # type: ignore[attr-defined]
        app = PoolApplication.__table__  # type: ignore[attr-defined]
        earlier = session.execute(  # earlier years' bases the list sent up this year
            sa.select(app.c.project_name, app.c.entity_name)
            .join(rec, rec.c.application_id == app.c.id)
            .where(
                rec.c.year == year,
                rec.c.from_unit == key,
                rec.c.status == RecommendationStatus.approved.value,
                rec.c.reason == NAMED_BY_LIST,
                rec.c.application_id.notin_([int(a) for a in mine["application_id"]]),
            )
            .order_by(app.c.project_name)
        ).all()
        context = {
            "unit": upper,
            "year": year,
            "from_unit": unit,
            "bases": mine[mine["recommended_to"].notna()].to_dict("records"),
            "earlier": [{"project": p, "entity": e} for p, e in earlier],
            "kept": mine[mine["recommended_to"].isna() & (mine["kept_reason"] != "")].to_dict("records"),
        }
        out.append(
            Decision(
                upper.key,
                None,
                MessageKind.review_result,
                "recommended",
                outbox_key(MessageKind.review_result, year, key, "to", upper.key, digest),
                render("review_recommended", context),
            )
        )
    return out


def kept_back(session: Session, cfg: CampaignConfig) -> pd.DataFrame:
    """三(三) 应推尽推: the year's named bases that meet the upper pool's bar and were not recommended,
    with the naming unit's reason (the overview lists them for the province)."""
    frame = _named_frame(session, cfg.campaign.year)
    kept = frame[(frame["status"] == BaseStatus.named) & (frame["kept_reason"] != "")]
    names = {u.key: u.name for u in cfg.units}
    upper = {u.key: names.get(u.reports_to or "", "") for u in cfg.units}
    return pd.DataFrame(
        {
            "命名单位": kept["unit_key"].map(names),
            "项目名称": kept["project"],
            "符合入库条件的上级": kept["unit_key"].map(upper),
            "未推荐理由": kept["kept_reason"],
        }
    )


# ------------------------------------------------------------------ artifacts
@task(name="publish-review", description="发布基地评审排名与命名结果", cache_policy=NO_CACHE)
def publish_review(cfg: CampaignConfig, today: dt.date) -> dict[str, int]:
    units = {u.key: u for u in cfg.units}
    labels = {
        BaseStatus.ranked.value: "已排名",
        BaseStatus.proposed.value: "拟命名（待审批）",
        BaseStatus.named.value: "已命名",
        BaseStatus.not_named.value: "未命名",
    }
    sources = {
        BaseSource.review.value: "专家评分排名",
        BaseSource.naming_list.value: "本级命名名单",
        BaseSource.imported.value: "往年名录导入",
    }
    with session_scope() as session:
        frame = _named_frame(session, cfg.campaign.year)
    if frame.empty:
        create_markdown_artifact(
            key="review-ranking", markdown="尚无命名名单或评分齐全的单位。", description="基地评审排名"
        )
        return {"rows": 0}
    table = pd.DataFrame(
        {
            "评审单位": frame["unit_key"].map(lambda k: units[k].name),
            "排名": frame["rank"].map(lambda r: "—" if pd.isna(r) else int(r)),
            "项目名称": frame["project"],
            "申报主体": frame["entity"],
            "总分": frame["total"].map(lambda t: "—" if pd.isna(t) else float(t)),
            "状态": frame["status"].map(labels),
            "档次": frame["tier"],
            "扶持资金（元）": frame["amount_yuan"],
            "命名文件": frame["decree_no"],
            "推荐至": frame["recommended_to"].map(lambda k: units[k].name if isinstance(k, str) else ""),
            "未推荐理由": frame["kept_reason"],
            "来源": frame["source"].map(sources),
        }
    )
    publish_table(
        "review-ranking",
        table,
        f"{cfg.campaign.year} 年基地评审排名与命名（{today}）",
        year=cfg.campaign.year,
    )
    return {"rows": len(table)}
