"""三送 services and funds as a whole: settling every kind of record into progress in one transaction, and
the summaries operators read in the UI. Each subject's own side effects are in tasks/visits.py,
tasks/trainings.py and tasks/funds.py; what they share in tasks/records.py.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from config import CampaignConfig
from config.schema import Level
from models import markdown
from models.clock import moment
from models.db import session_scope
from models.deadlines import periods
from models.pool import Hierarchy
from models.services import LINKED_SEPARATORS, fund_rates, needs_table, rate_text, special_funds
from models.tables import (
    JobPosting,
    ObligationInstance,
    PoolApplication,
    RecommendationStatus,
    TrainingRecord,
    VisitRecord,
)
from tasks.artifacts import publish_table
from tasks.funds import FUNDS, fund_ledger, funds_table, raise_flags, settle_funds
from tasks.pool import load_pool
from tasks.records import query_frame, services_of
from tasks.trainings import settle_trainings
from tasks.unit_of_work import task
from tasks.visits import (
    ASSIGNMENT,
    VISITS,
    assign_from_config,
    needs_summary,
    pending_leaders,
    settle_visits,
    sync_project_obligations,
)


def _current(cfg: CampaignConfig, key: str, today: dt.date) -> str | None:
    """The label of the obligation's period running today (else the last one begun, else the first)."""
    owed = periods(cfg.campaign, cfg.campaign.obligation(key))
    running = [p for p in owed if p.kickoff <= today]
    return (running[-1] if running else owed[0]).label if owed else None


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


def service_coverage(session: Session, cfg: CampaignConfig, as_of: dt.date) -> pd.DataFrame:
    """三(四) "三送…对象上要涵盖本级全部入库项目": per unit (unit_key), the projects of its pool
    (`pool_projects`: admitted there or recommended into it) and those served this year up to `as_of`
    (`served_projects`: visited, given a job posting, or named by a training the unit's area held —
    those of `services.served_by`)."""
    year = cfg.campaign.year
    served_by = services_of(cfg).served_by
    apps, recs = load_pool(session, year)
    approved = recs[recs["status"] == RecommendationStatus.approved]
    members = pd.concat(
        [
            pd.DataFrame({"unit_key": apps["own_unit"], "application_id": apps["id"]}),
            pd.DataFrame({"unit_key": approved["to_unit"], "application_id": approved["application_id"]}),
        ],
        ignore_index=True,
    ).drop_duplicates()
    visit, posting = VisitRecord.__table__, JobPosting.__table__  # type: ignore[attr-defined]
    queries = []
    if "走访" in served_by:
        queries.append(
            sa.select(visit.c.application_id).where(visit.c.year == year, visit.c.visited_on <= as_of)
        )
    if "招聘发布" in served_by:
        queries.append(
            sa.select(posting.c.application_id).where(posting.c.year == year, posting.c.posted_on <= as_of)
        )
    served = set(session.execute(sa.union(*queries)).scalars()) if queries else set()
    training = TrainingRecord.__table__  # type: ignore[attr-defined]
    linked = query_frame(
        session,
        sa.select(training.c.unit_key, training.c.linked_projects).where(
            training.c.year == year, training.c.held_on <= as_of, training.c.linked_projects != ""
        ),
        ["unit_key", "linked_projects"],
    )
    if "培训" in served_by and not linked.empty:  # projects named: those of the holding unit's area
        hierarchy = Hierarchy.of(cfg.units)
        names = linked.assign(project_name=linked["linked_projects"].str.split(LINKED_SEPARATORS, regex=True))
        names = names.explode("project_name").assign(project_name=lambda f: f["project_name"].str.strip())
        for unit_key, group in names.groupby("unit_key"):
            area = apps[apps["region_key"].isin(hierarchy.jurisdiction(str(unit_key)))]
            served |= set(area.loc[area["project_name"].isin(group["project_name"]), "id"].astype(int))
    members["served"] = members["application_id"].isin(served)
    out = members.groupby("unit_key").agg(
        pool_projects=("application_id", "size"), served_projects=("served", "sum")
    )
    return out.reset_index()


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
    rates = fund_rates(special_funds(fund_ledger(session, year), services.funds), today)
    out["专项资金到位率"] = rates["arrival_rate"].reindex(out.index).map(rate_text)
    out["专项资金执行率"] = rates["execution_rate"].reindex(out.index).map(rate_text)
    posting = JobPosting.__table__  # type: ignore[attr-defined]
    postings = query_frame(
        session,
        sa.select(posting.c.submitted_by, posting.c.application_id, posting.c.postings).where(
            posting.c.year == year
        ),
        ["unit_key", "application_id", "postings"],
    )
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    workshops = query_frame(  # 一 "以基地为载体建设就业帮扶车间": admitted pool projects that are workshops
        session,
        sa.select(app.c.pool_unit, sa.func.count())
        .where(app.c.year <= year, app.c.admitted, app.c.assistance_workshop)
        .group_by(app.c.pool_unit),
        ["unit_key", "workshops"],
    ).set_index("unit_key")["workshops"]
    out["就业帮扶车间（个）"] = workshops.reindex(out.index).fillna(0).astype(int)
    coverage = service_coverage(session, cfg, today).set_index("unit_key").reindex(out.index, fill_value=0)
    out["三送覆盖（已服务/入库项目）"] = (
        coverage["served_projects"].astype(int).astype(str)
        + "/"
        + coverage["pool_projects"].astype(int).astype(str)
    )
    out["三送覆盖率"] = (
        coverage["served_projects"] / coverage["pool_projects"].where(coverage["pool_projects"] > 0)
    ).map(lambda v: "—" if pd.isna(v) else f"{v:.0%}")
    grouped = postings.groupby("unit_key")
    out["招聘发布（项目/条）"] = (
        (grouped["application_id"].nunique().astype(str) + "/" + grouped["postings"].sum().astype(str))
        .reindex(out.index)
        .fillna("0/0")
    )
    return out.reset_index()


@task(name="publish-services", description="发布三送服务与资金汇总", cache_policy=NO_CACHE)
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
                    needs_table(
                        needs_summary(session, cfg),
                        list(services_of(cfg).need_categories),
                        {u.key: u.name for u in cfg.units},
                    ),
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
                ("funds-rates", funds, f"专项资金到位率、执行率与预警（{as_of}；节点列为节点当日的比率）")
            )
    for key, frame, description in tables:
        publish_table(key, frame, description, year=cfg.campaign.year)
    if funds is not None:
        flagged = funds[funds["预警"] != ""]
        lines = [f"### 资金预警（{as_of}）", ""]
        lines += [
            f"- {markdown.text(r['单位'])}：{markdown.text(r['预警'])}" for r in flagged.to_dict("records")
        ] or ["无"]
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
