"""三送 services and funds: their side effects. The rules are in models/services.py.

- Instances owed per recommended project (包保 within N working days, a visit each quarter) are
  created from the approved recommendations, set-based, and kept in step with what was recorded.
- Visit, training, job-posting and fund workbooks go through tasks/sheets.py like every sheet.
- `settle` is the one way progress reaches an obligation: recorded counts in, instances' done
  counts, status and progress notes out, for every kind of service.
- Flags (funds diverted, subsidies out of step) are raised once each and told to the province at once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, SQLModel

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import Level, Services, Unit
from models.clock import local_date, moment
from models.db import insert_ignoring_duplicates, insert_new, session_scope
from models.deadlines import after_event_period, calendar_for, periods
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision, owes
from models.pool import Hierarchy
from models.services import (
    POSTING_SHEET,
    checkpoint_status,
    count_note,
    diverted,
    first_owed_periods,
    fund_rates,
    fund_sheet,
    period_of,
    rate_text,
    subsidies_out_of_step,
    training_progress,
    training_sheet,
    visit_sheet,
)
from models.sheets import CheckContext
from models.tables import (
    FundRecord,
    JobPosting,
    LeaderAssignment,
    MessageKind,
    ObligationInstance,
    ObligationStatus,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
    ServiceFlag,
    TrainingRecord,
    VisitNeed,
    VisitRecord,
)
from tasks.artifacts import publish_table
from tasks.notify import enqueue
from tasks.sheets import (
    MESSAGE_ITEMS,
    ContextFn,
    SheetIntake,
    Stored,
    StoreFn,
    StoreRequest,
    upsert_changed,
)
from tasks.sync import INSTANCE_KEY

ASSIGNMENT = "leader_assignment"
VISITS = "leader_visits"
POSTINGS = "job_postings"
FUNDS = "funds_tracking"
TRAINING_FOLDER = "trainings"
FLAG_LABELS = {"diversion": "省级专项资金挪用", "subsidy_out_of_step": "市级基地补助未与省级同步发放"}


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
                table.c.year == cfg.campaign.year,
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


def _store_funds(session: Session, req: StoreRequest) -> Stored:
    rules = services_of(req.cfg).funds
    rows = req.rows.assign(diversion=diverted(req.rows, rules))
    stored = store_records(
        FundRecord,
        ["unit_key", "document_no", "purpose"],
        [
            "source",
            "fund_year",
            "allocated",
            "allocated_on",
            "arrived",
            "arrived_on",
            "executed",
            "executed_on",
            "note",
            "diversion",
        ],
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


def visit_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=visit_sheet(services_of(cfg)),
        obligation_key=VISITS,
        topic="包保走访",
        count_labels=COUNTS,
        context=records_context(0),
        store=store_records(
            VisitRecord,
            ["unit_key", "credit_code", "project_name", "visited_on"],
            [
                "application_id",
                "leader_name",
                "leader_title",
                "findings",
                "need_categories",
                "needs",
                "services",
            ],
        ),
        resubmit_hint="同一单位对同一项目同一天的走访重报将更新原记录",
    )


def posting_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=POSTING_SHEET,
        obligation_key=POSTINGS,
        topic="招聘发布",
        count_labels=COUNTS,
        context=records_context(0),
        store=store_records(
            JobPosting,
            ["credit_code", "project_name", "posted_on"],
            ["application_id", "postings", "positions", "note"],
        ),
        resubmit_hint="同一项目同一发布日期重报将更新原记录",
    )


def training_intake(cfg: CampaignConfig) -> SheetIntake:
    services = services_of(cfg)
    return SheetIntake(
        sheet=training_sheet(services),
        obligation_key=next(iter(services.training_kinds.values())),
        folder=TRAINING_FOLDER,
        topic="培训",
        count_labels=COUNTS,
        context=records_context(0),
        store=store_records(
            TrainingRecord, ["unit_key", "kind", "held_on", "topic"], ["attendees", "linked_projects", "note"]
        ),
        resubmit_hint="同一单位同一天同一主题的培训重报将更新原记录",
    )


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


# ------------------------------------------------------------------ obligations per project
def _approved(session: Session, year: int) -> pd.DataFrame:
    """Approved recommendations: application, recommending unit, approval day (UTC), project name."""
    rec = Recommendation.__table__  # type: ignore[attr-defined]
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(rec.c.application_id, rec.c.from_unit, rec.c.decided_at, app.c.project_name)
        .join(app, app.c.id == rec.c.application_id)
        .where(rec.c.year == year, rec.c.status == RecommendationStatus.approved)
    ).all()
    return pd.DataFrame(rows, columns=["application_id", "unit_key", "decided_at", "project_name"])


def sync_project_obligations(session: Session, cfg: CampaignConfig) -> int:
    """Instances of the obligations owed per recommended project; existing ones are left as they are."""
    campaign = cfg.campaign
    services = services_of(cfg)
    cal = calendar_for(campaign)
    approved = _approved(session, campaign.year)
    units = {u.key: u for u in cfg.units}
    rows: list[dict[str, Any]] = []
    for ob in campaign.obligations:
        if ob.subject != "recommended_project":
            continue
        for rec in approved.itertuples(index=False):
            unit = units[rec.unit_key]
            if not owes(ob, unit):
                continue
            approved_on = local_date(rec.decided_at, campaign)
            if ob.schedule.kind == "after_event":
                owed = [after_event_period(ob, approved_on, cal)]
            else:
                owed = first_owed_periods(
                    campaign, ob, approved_on, cal, services.first_visit_min_working_days
                )
            for period in owed:
                rows.append(
                    {
                        "year": campaign.year,
                        "obligation_key": ob.key,
                        "unit_key": unit.key,
                        "period": period.label,
                        "subject": f"app:{rec.application_id}",
                        "subject_label": rec.project_name,
                        "kickoff_on": period.kickoff,
                        "due_on": period.due,
                        "status": ObligationStatus.open.value,
                        "required_count": 1,
                    }
                )
    return insert_ignoring_duplicates(session, ObligationInstance, rows, unique=INSTANCE_KEY)


def assign_from_config(session: Session, cfg: CampaignConfig, today: dt.date) -> int:
    """Name the 包保 leader of a unit that has exactly one contact with a leader role in regions.yaml."""
    roles = set(services_of(cfg).leader_roles)
    leaders = {}
    for unit in cfg.units:
        found = [c for c in unit.contacts if c.role in roles]
        if len(found) == 1:
            leaders[unit.key] = found[0]
    approved = _approved(session, cfg.campaign.year)
    rows = [
        {
            "year": cfg.campaign.year,
            "application_id": int(rec.application_id),
            "unit_key": rec.unit_key,
            "leader_name": leaders[rec.unit_key].name,
            "leader_title": leaders[rec.unit_key].role,
            "assigned_on": today,
            "assigned_by": "config",
            "source": "config",
        }
        for rec in approved.itertuples(index=False)
        if rec.unit_key in leaders
    ]
    return insert_ignoring_duplicates(
        session, LeaderAssignment, rows, unique=["year", "application_id", "unit_key"]
    )


def assign_leader(
    cfg: CampaignConfig,
    *,
    application_id: int,
    leader_name: str,
    leader_title: str,
    assigned_by: str,
    today: dt.date,
    unit_key: str | None = None,
) -> dict[str, Any]:
    """An operator names (or changes) a project's 包保 leader. The unit is the one that recommended it."""
    if not leader_name.strip():
        raise SubmissionError(str(application_id), "包保领导姓名不能为空")
    with session_scope() as session:
        approved = _approved(session, cfg.campaign.year)
        mine = approved[approved["application_id"] == application_id]
        if unit_key is not None:
            mine = mine[mine["unit_key"] == unit_key]
        if mine.empty:
            raise SubmissionError(
                str(application_id), f"编号 {application_id} 不是已同意推荐的项目，无需包保"
            )
        if len(mine) > 1:
            names = "、".join(cfg.unit(k).name for k in mine["unit_key"])
            raise SubmissionError(str(application_id), f"该项目由{names}分别推荐，请指明包保单位")
        rec = mine.iloc[0]
        table = LeaderAssignment.__table__  # type: ignore[attr-defined]
        session.execute(
            sa.delete(table).where(
                table.c.year == cfg.campaign.year,
                table.c.application_id == application_id,
                table.c.unit_key == rec["unit_key"],
            )
        )
        session.execute(
            sa.insert(table).values(
                year=cfg.campaign.year,
                application_id=application_id,
                unit_key=rec["unit_key"],
                leader_name=leader_name.strip(),
                leader_title=leader_title.strip(),
                assigned_on=today,
                assigned_by=assigned_by,
                source="operator",
            )
        )
    return {
        "project": rec["project_name"],
        "unit": cfg.unit(rec["unit_key"]).name,
        "leader": leader_name.strip(),
    }


# ------------------------------------------------------------------ progress
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


def settle_visits(session: Session, cfg: CampaignConfig, now: dt.datetime) -> dict[str, int]:
    """包保 named, and visits per unit, project and quarter."""
    year = cfg.campaign.year
    assignment = LeaderAssignment.__table__  # type: ignore[attr-defined]
    assigned = query_frame(
        session,
        sa.select(assignment.c.unit_key, assignment.c.application_id, assignment.c.leader_name).where(
            assignment.c.year == year
        ),
        ["unit_key", "application_id", "leader_name"],
    )
    progress = pd.DataFrame(
        {
            "unit_key": assigned["unit_key"],
            "subject": "app:" + assigned["application_id"].astype(str),
            "period": str(year),
            "done": 1,
            "note": "包保领导：" + assigned["leader_name"],
        }
    )
    counts = {"assignments": settle(session, cfg, ASSIGNMENT, progress, now)}
    visit = VisitRecord.__table__  # type: ignore[attr-defined]
    visits = query_frame(
        session,
        sa.select(visit.c.unit_key, visit.c.application_id, visit.c.visited_on).where(visit.c.year == year),
        ["unit_key", "application_id", "visited_on"],
    )
    ob = cfg.campaign.obligation(VISITS)
    visits["period"] = period_of(visits["visited_on"], periods(cfg.campaign, ob))
    visits["subject"] = "app:" + visits["application_id"].astype(str)
    done = visits[visits["period"] != ""].groupby(["unit_key", "subject", "period"]).size().rename("done")
    counts["visits"] = settle(session, cfg, VISITS, done.reset_index(), now)
    return counts


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


def fund_ledger(session: Session, year: int) -> pd.DataFrame:
    table = FundRecord.__table__  # type: ignore[attr-defined]
    columns = [
        "unit_key",
        "source",
        "fund_year",
        "document_no",
        "purpose",
        "allocated",
        "allocated_on",
        "arrived",
        "arrived_on",
        "executed",
        "executed_on",
        "diversion",
    ]
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
    rates = fund_rates(funds, today)
    ob = cfg.campaign.obligation(FUNDS)
    owing = [u.key for u in cfg.units if owes(ob, u)]
    frames = []
    for period in periods(cfg.campaign, ob):
        status = checkpoint_status(rates, owing, rules.targets[period.due])
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


# ------------------------------------------------------------------ summaries
def _current(cfg: CampaignConfig, key: str, today: dt.date) -> str | None:
    """The label of the obligation's period running today (else the last one begun, else the first)."""
    owed = periods(cfg.campaign, cfg.campaign.obligation(key))
    running = [p for p in owed if p.kickoff <= today]
    return (running[-1] if running else owed[0]).label if owed else None


def needs_summary(session: Session, cfg: CampaignConfig) -> pd.DataFrame:
    """Visits and projects per quarter, city and need category; kept in `visit_need` for the year."""
    year = cfg.campaign.year
    hierarchy = Hierarchy.of(cfg.units)
    visit = VisitRecord.__table__  # type: ignore[attr-defined]
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    visits = query_frame(
        session,
        sa.select(visit.c.application_id, visit.c.visited_on, visit.c.need_categories, app.c.region_key)
        .join(app, app.c.id == visit.c.application_id)
        .where(visit.c.year == year),
        ["application_id", "visited_on", "need_categories", "region_key"],
    )
    table = VisitNeed.__table__  # type: ignore[attr-defined]
    session.execute(sa.delete(table).where(table.c.year == year))
    columns = ["quarter", "city_key", "category", "visits", "projects"]
    if visits.empty:
        return pd.DataFrame(columns=columns)
    quarters = periods(cfg.campaign, cfg.campaign.obligation(VISITS))
    visits["quarter"] = period_of(visits["visited_on"], quarters)
    city_of = {k: hierarchy.chain(k).get(Level.city, k) for k in visits["region_key"].unique()}
    visits["city_key"] = visits["region_key"].map(city_of)
    visits["category"] = visits["need_categories"].str.split("、")
    exploded = visits[visits["quarter"] != ""].explode("category")
    exploded = exploded[exploded["category"].notna() & (exploded["category"] != "")]
    summary = (
        exploded.groupby(["quarter", "city_key", "category"])
        .agg(visits=("application_id", "size"), projects=("application_id", "nunique"))
        .reset_index()
    )
    if not summary.empty:
        session.execute(sa.insert(table), [{"year": year, **r} for r in summary.to_dict("records")])
    return summary[columns]


def pending_leaders(session: Session, cfg: CampaignConfig) -> pd.DataFrame:
    """Recommended projects still without a 包保 leader: the operator's list for `assign_leaders`."""
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    rows = query_frame(
        session,
        sa.select(
            table.c.subject, table.c.subject_label, table.c.unit_key, table.c.kickoff_on, table.c.due_on
        )
        .where(
            table.c.year == cfg.campaign.year,
            table.c.obligation_key == ASSIGNMENT,
            table.c.status == ObligationStatus.open,
        )
        .order_by(table.c.due_on, table.c.subject),
        ["subject", "project", "unit_key", "approved_on", "due_on"],
    )
    names = {u.key: u.name for u in cfg.units}
    return pd.DataFrame(
        {
            "项目编号": rows["subject"].str.removeprefix("app:").astype(int),
            "项目名称": rows["project"],
            "推荐单位": rows["unit_key"].map(names),
            "单位代码": rows["unit_key"],
            "同意推荐日期": rows["approved_on"].astype(str),
            "应明确包保日期": rows["due_on"].astype(str),
        }
    )


def _instances(session: Session, year: int, keys: list[str]) -> pd.DataFrame:
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    return query_frame(
        session,
        sa.select(
            table.c.obligation_key,
            table.c.unit_key,
            table.c.period,
            table.c.status,
            table.c.done_count,
            table.c.required_count,
        ).where(table.c.year == year, table.c.obligation_key.in_(keys)),
        ["obligation_key", "unit_key", "period", "status", "done", "required"],
    )


def service_summary(session: Session, cfg: CampaignConfig, today: dt.date) -> pd.DataFrame:
    """One row per city and county: the year's 三送 services and funds at a glance."""
    year = cfg.campaign.year
    services = services_of(cfg)
    keys = [ASSIGNMENT, VISITS, FUNDS, *services.training_kinds.values()]
    inst = _instances(session, year, keys)
    units = [u for u in cfg.units if u.level is not Level.province]
    out = pd.DataFrame({"单位": [u.name for u in units], "代码": [u.key for u in units]}).set_index("代码")

    def tally(key: str, period: str | None, column: str, *, counted: bool = False) -> None:
        rows = inst[(inst["obligation_key"] == key) & ((inst["period"] == period) if period else True)]
        if counted:
            text = rows.set_index("unit_key").apply(lambda r: f"{r['done']}/{r['required']}", axis=1)
        else:
            grouped = rows.groupby("unit_key")["status"]
            text = grouped.apply(lambda s: f"{int((s == 'submitted').sum())}/{len(s)}")
        out[column] = text.reindex(out.index).fillna("—") if not rows.empty else "—"

    tally(ASSIGNMENT, None, "已明确包保/推荐项目")
    quarter = _current(cfg, VISITS, today)
    tally(VISITS, quarter, f"走访（{quarter or '—'}）已走访/应走访")
    for label, key in services.training_kinds.items():
        period = _current(cfg, key, today)
        tally(key, period, f"{label}（{period or '—'}）已办/应办", counted=True)
    rates = fund_rates(fund_ledger(session, year), today)
    out["资金到位率"] = rates["arrival_rate"].reindex(out.index).map(rate_text)
    out["资金执行率"] = rates["execution_rate"].reindex(out.index).map(rate_text)
    posting = JobPosting.__table__  # type: ignore[attr-defined]
    postings = query_frame(
        session,
        sa.select(posting.c.submitted_by, posting.c.application_id, posting.c.postings).where(
            posting.c.year == year
        ),
        ["unit_key", "application_id", "postings"],
    )
    grouped = postings.groupby("unit_key")
    out["招聘发布（项目/条）"] = (
        (grouped["application_id"].nunique().astype(str) + "/" + grouped["postings"].sum().astype(str))
        .reindex(out.index)
        .fillna("0/0")
    )
    return out.reset_index()


def funds_table(session: Session, cfg: CampaignConfig, today: dt.date) -> pd.DataFrame:
    """Per owing unit: rates today and on each checkpoint day (as of that day), and its flags."""
    funds = fund_ledger(session, cfg.campaign.year)
    ob = cfg.campaign.obligation(FUNDS)
    owing = [u for u in cfg.units if owes(ob, u)]
    out = pd.DataFrame({"单位": [u.name for u in owing]}, index=[u.key for u in owing])
    now = fund_rates(funds, today)
    out["下达（万元）"] = now["allocated"].reindex(out.index).fillna(0).round(2)
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


@task(name="publish-services", description="发布三送服务与资金汇总", cache_policy=NO_CACHE)
def needs_table(cfg: CampaignConfig, needs: pd.DataFrame) -> pd.DataFrame:
    """The needs summary as operators read it: a row per quarter and city, a column per category."""
    categories = list(services_of(cfg).need_categories)
    if needs.empty:
        return pd.DataFrame(columns=["季度", "市州", *categories])
    names = {u.key: u.name for u in cfg.units}
    return (
        needs.assign(市州=needs["city_key"].map(names))
        .pivot_table(
            index=["quarter", "市州"], columns="category", values="visits", aggfunc="sum", fill_value=0
        )
        .reindex(columns=categories, fill_value=0)
        .reset_index()
        .rename(columns={"quarter": "季度"})
    )


def publish_services(cfg: CampaignConfig, today: dt.date, sections: list[str]) -> dict[str, int]:
    """Table artifacts operators read in the UI: `service-summary` always; with "projects",
    `visit-needs` and `leaders-pending`; with "funds", `funds-rates` and the `funds-flags` list."""
    as_of = f"截至{today:%Y-%m-%d}"
    funds = None
    with session_scope() as session:
        tables = [
            ("service-summary", service_summary(session, cfg, today), f"各市县三送服务与资金情况（{as_of}）")
        ]
        if "projects" in sections:
            tables += [
                (
                    "visit-needs",
                    needs_table(cfg, needs_summary(session, cfg)),
                    "包保走访收集的需求：各季度、各市州、各类别的走访次数",
                ),
                (
                    "leaders-pending",
                    pending_leaders(session, cfg),
                    "待明确包保领导的项目：在“assign_leaders”中按项目编号登记包保领导",
                ),
            ]
        if "funds" in sections:
            funds = funds_table(session, cfg, today)
            tables.append(
                ("funds-rates", funds, f"资金到位率、执行率与预警（{as_of}；节点列为节点当日的比率）")
            )
    for key, frame, description in tables:
        publish_table(key, frame, description, year=cfg.campaign.year)
    if funds is not None:
        flagged = funds[funds["预警"] != ""]
        lines = [f"### 资金预警（{as_of}）", ""]
        lines += [f"- {r['单位']}：{r['预警']}" for r in flagged.to_dict("records")] or ["无"]
        create_markdown_artifact(key="funds-flags", markdown="\n".join(lines), description="资金预警")
    return {key: len(frame) for key, frame, _ in tables}


@task(
    name="settle-services",
    description="按报送记录更新包保、走访、培训与资金任务进度",
    cache_policy=NO_CACHE,
    retries=2,
)
def update_progress(cfg: CampaignConfig, today: dt.date, parts: list[str]) -> dict[str, int]:
    """One transaction: per-project obligations, progress from the records, and flags. `parts`: any
    of "projects" (包保 and visits), "trainings", "funds"."""
    now = moment(today, cfg.campaign)
    counts: dict[str, int] = {}
    with session_scope() as session:
        if "projects" in parts:
            counts["project_instances"] = sync_project_obligations(session, cfg)
            counts["assigned_from_config"] = assign_from_config(session, cfg, today)
            counts |= settle_visits(session, cfg, now)
        if "trainings" in parts:
            counts |= settle_trainings(session, cfg, now)
        if "funds" in parts:
            ledger = fund_ledger(session, cfg.campaign.year)  # read once: rates and flags come from it
            counts |= settle_funds(session, cfg, ledger, today, now)
            counts["flags"] = raise_flags(session, cfg, ledger, today, now)
    return counts


def project_names(session: Session, cfg: CampaignConfig, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Pool project number -> (project name, credit code), for forms that name projects by number."""
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(table.c.id, table.c.project_name, table.c.credit_code).where(
            table.c.year == cfg.campaign.year, table.c.id.in_(ids)
        )
    ).all()
    return {pid: (name, code) for pid, name, code in rows}
