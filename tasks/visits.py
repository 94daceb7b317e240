"""三(四) 包保 and quarterly visits: obligations owed per recommended project (包保 within N working days,
a visit each quarter) created from the approved recommendations, set-based; the visit and job-posting
sheets; what the visits found that projects need. The rules are in models/services.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import Level
from models.clock import local_date
from models.db import insert_ignoring_duplicates, session_scope
from models.deadlines import after_event_period, calendar_for, periods
from models.planning import owes
from models.pool import Hierarchy
from models.services import (
    POSTING_SHEET,
    first_owed_periods,
    period_of,
    visit_sheet,
)
from models.tables import (
    JobPosting,
    LeaderAssignment,
    ObligationInstance,
    ObligationStatus,
    OutboxMessage,
    OutboxStatus,
    PoolApplication,
    Recommendation,
    RecommendationStatus,
    Submission,
    VisitNeed,
    VisitRecord,
)
from tasks.records import COUNTS, query_frame, records_context, services_of, settle, store_records
from tasks.sheets import (
    SheetIntake,
)
from tasks.sync import INSTANCE_KEY

ASSIGNMENT = "leader_assignment"
VISITS = "leader_visits"
POSTINGS = "job_postings"


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


def _approved(session: Session, year: int) -> pd.DataFrame:
    """Approved recommendations standing in `year`, whatever year they were made in (a project
    recommended upward in 2021 still owes its 包保 leader's visits in 2022): application, recommending
    unit, approval moment (UTC), project name."""
    rec = Recommendation.__table__  # type: ignore[attr-defined]
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(
            rec.c.application_id, rec.c.from_unit, rec.c.decided_at, rec.c.proposed_at, app.c.project_name
        )
        .join(app, app.c.id == rec.c.application_id)
        .where(rec.c.year <= year, rec.c.status == RecommendationStatus.approved)
    ).all()
    frame = pd.DataFrame(
        rows, columns=["application_id", "unit_key", "decided_at", "proposed_at", "project_name"]
    )
    # what is owed runs from when the campaign learnt of it: an earlier year's recommendation imported
    # from the province's list (tasks/registry.py: proposed_at is the import) owes from the import on
    frame["known_at"] = frame[["decided_at", "proposed_at"]].max(axis=1)
    return frame


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
            approved_on = local_date(rec.known_at, campaign)
            if ob.schedule.kind == "after_event":
                # one recommended before this campaign began is owed from its start (a leader named in an
                # earlier year settles it at once: settle_visits)
                owed = [after_event_period(ob, max(approved_on, campaign.starts), cal)]
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
    withdraw_project_obligations(session, cfg, approved)
    return insert_ignoring_duplicates(session, ObligationInstance, rows, unique=INSTANCE_KEY)


def withdraw_project_obligations(session: Session, cfg: CampaignConfig, approved: pd.DataFrame) -> int:
    """A recommendation withdrawn (a unit's corrected naming list) owes nothing more: its open 包保 and
    visit instances go, with the reminders still queued for them (those sent stay, unlinked). An
    instance with evidence recorded against it stays."""
    keys = [ob.key for ob in cfg.campaign.obligations if ob.subject == "recommended_project"]
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    open_rows = query_frame(
        session,
        sa.select(table.c.id, table.c.unit_key, table.c.subject).where(
            table.c.year == cfg.campaign.year,
            table.c.obligation_key.in_(keys),
            table.c.status == ObligationStatus.open.value,
        ),
        ["id", "unit_key", "subject"],
    )
    standing = set(zip(approved["unit_key"], "app:" + approved["application_id"].astype(str), strict=True))
    gone = [
        int(i)
        for i, unit, subject in zip(open_rows["id"], open_rows["unit_key"], open_rows["subject"], strict=True)
        if (unit, subject) not in standing
    ]
    if not gone:
        return 0
    evidenced = set(
        session.execute(
            sa.select(Submission.obligation_id).where(Submission.obligation_id.in_(gone))
        ).scalars()  # type: ignore[attr-defined]
    )
    gone = [i for i in gone if i not in evidenced]
    outbox = OutboxMessage.__table__  # type: ignore[attr-defined]
    session.execute(
        sa.delete(outbox).where(
            outbox.c.obligation_id.in_(gone), outbox.c.status == OutboxStatus.pending.value
        )
    )
    session.execute(sa.update(outbox).where(outbox.c.obligation_id.in_(gone)).values(obligation_id=None))
    session.execute(sa.delete(table).where(table.c.id.in_(gone)))
    return len(gone)


def assign_from_config(session: Session, cfg: CampaignConfig, today: dt.date) -> int:
    """Name the 包保 leader of a unit that has exactly one contact with a leader role in regions.yaml."""
    roles = set(services_of(cfg).leader_roles)
    leaders = {}
    for unit in cfg.units:
        found = [c for c in unit.contacts if c.role in roles]
        if len(found) == 1:
            leaders[unit.key] = found[0]
    approved = _approved(session, cfg.campaign.year)
    assigned = set(
        _assignments(session, cfg.campaign.year)[["application_id", "unit_key"]].itertuples(index=False)
    )
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
        if rec.unit_key in leaders and (rec.application_id, rec.unit_key) not in assigned
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


def _assignments(session: Session, year: int) -> pd.DataFrame:
    """Each recommended project's 包保 leader in force in `year`: the newest assignment of that year or
    an earlier one (a leader named in 2021 goes on in 2022 until one is named anew)."""
    assignment = LeaderAssignment.__table__  # type: ignore[attr-defined]
    columns = ["unit_key", "application_id", "leader_name", "year", "assigned_on", "id"]
    rows = query_frame(
        session,
        sa.select(*(assignment.c[c] for c in columns)).where(assignment.c.year <= year),
        columns,
    )
    newest = rows.sort_values(["year", "assigned_on", "id"]).drop_duplicates(
        ["unit_key", "application_id"], keep="last"
    )
    return newest[["unit_key", "application_id", "leader_name"]].reset_index(drop=True)


def settle_visits(session: Session, cfg: CampaignConfig, now: dt.datetime) -> dict[str, int]:
    """包保 named, and visits per unit, project and quarter."""
    year = cfg.campaign.year
    assigned = _assignments(session, year)
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


def project_names(session: Session, cfg: CampaignConfig, ids: list[int]) -> dict[int, tuple[str, str]]:
    """Pool project number -> (project name, credit code), for forms that name projects by number."""
    table = PoolApplication.__table__  # type: ignore[attr-defined]
    rows = session.execute(
        sa.select(table.c.id, table.c.project_name, table.c.credit_code).where(
            table.c.year <= cfg.campaign.year, table.c.id.in_(ids)
        )
    ).all()
    return {pid: (name, code) for pid, name, code in rows}
