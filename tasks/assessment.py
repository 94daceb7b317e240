"""四(三) The year-end assessment: figures gathered set-based from what the year recorded, scored by
models/assessment.py, written as a workbook and charts, published as artifacts, and sent to each city
as its own scorecard once final."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session

from config import CampaignConfig
from config.schema import AssessmentRules, Level
from config.settings import get_settings
from models.assessment import (
    INCOME_SHEET,
    MEASURES,
    NOT_DUE_LABEL,
    bases_counted,
    city_totals,
    duties_counted,
    full_marks,
    level_plan,
    score,
)
from models.clock import moment
from models.db import session_scope
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision
from models.pool import Hierarchy
from models.publicity import city_of
from models.services import fund_rates, special_funds
from models.tables import (
    BaseStatus,
    IncomeRecord,
    MessageKind,
    NamedBase,
    ObligationInstance,
    ObligationStatus,
    PoolApplication,
)
from tasks.artifacts import markdown_table, publish_table, report_link
from tasks.charts import bar_chart, paired_bar_chart
from tasks.funds import fund_ledger
from tasks.notify import enqueue
from tasks.records import COUNTS, query_frame, records_context, services_of, settle, store_records
from tasks.services import service_coverage
from tasks.sheets import SheetIntake
from tasks.unit_of_work import task
from tasks.workbooks import write_report


def assessment_of(cfg: CampaignConfig) -> AssessmentRules:
    rules: AssessmentRules = cfg.require("assessment", "indicators and their weights")
    return rules


# ------------------------------------------------------------------ the income sheet
def income_intake(cfg: CampaignConfig) -> SheetIntake:
    return SheetIntake(
        sheet=INCOME_SHEET,
        obligation_key=assessment_of(cfg).income_obligation,
        topic="增收情况",
        count_labels=COUNTS,
        context=records_context(1),
        store=store_records(
            IncomeRecord,
            ["credit_code", "project_name"],
            ["unit_key", "application_id", "income_last_year", "income_this_year"],
            lambda req: {"unit_key": req.sender.key},
        ),
        resubmit_hint="同一项目重报将更新原记录",
    )


# ------------------------------------------------------------------ figures
def gather_figures(session: Session, cfg: CampaignConfig, as_of: dt.date) -> pd.DataFrame:
    """Per city and county: every component of every measure, as of a day."""
    rules = assessment_of(cfg)
    year = cfg.campaign.year
    units = [u for u in cfg.units if u.level is not Level.province]
    figures = pd.DataFrame(
        {
            "unit_key": [u.key for u in units],
            "city_key": [city_of(u) for u in units],
            "is_city": [u.level is Level.city for u in units],
        }
    ).set_index("unit_key")

    kept = counted_bases(session, cfg)
    named = (
        kept.groupby("counts_for")
        .agg(
            bases_named=("application_id", "size"),
            provincial=("provincial", "sum"),
            workshops=("assistance_workshop", "sum"),
            startups=("entrepreneurs_driven", "sum"),
            jobs=("jobs", "sum"),
            poverty_jobs=("poverty_jobs", "sum"),
        )
        .rename_axis("unit_key")
    )
    covered = service_coverage(session, cfg, as_of).set_index("unit_key")

    income = IncomeRecord.__table__  # type: ignore[attr-defined]
    incomes = query_frame(
        session,
        sa.select(
            income.c.unit_key, sa.func.sum(income.c.income_last_year), sa.func.sum(income.c.income_this_year)
        )
        .where(income.c.year == year)
        .group_by(income.c.unit_key),
        ["unit_key", "income_last", "income_this"],
    ).set_index("unit_key")

    # 三(五) 三个确保 and 四(三) "资金到位和执行情况（含因素法下达资金）": the special funds' rates
    funds = special_funds(fund_ledger(session, year), services_of(cfg).funds)
    money = fund_rates(funds, as_of)[["allocated", "arrived", "executed"]]
    factor = fund_rates(funds[funds["source"] == rules.factor_source], as_of)[
        ["allocated", "arrived", "executed"]
    ]

    ob = ObligationInstance.__table__  # type: ignore[attr-defined]

    def met(keys: tuple[str, ...], prefix: str) -> pd.DataFrame:
        rows = query_frame(
            session,
            sa.select(
                ob.c.unit_key,
                ob.c.obligation_key,
                sa.func.count(),
                sa.func.sum(sa.case((ob.c.status == ObligationStatus.submitted.value, 1), else_=0)),
            )
            .where(ob.c.year == year, ob.c.obligation_key.in_(keys), ob.c.due_on <= as_of)
            .group_by(ob.c.unit_key, ob.c.obligation_key),
            ["unit_key", "obligation_key", "due", "met"],
        )
        principle = {
            key: [u.key for u in cfg.units if u.level in cfg.campaign.obligation(key).principle_only]
            for key in keys
        }
        return duties_counted(rows, principle, prefix)

    parts = [
        named,
        covered,
        incomes,
        money,
        factor.add_prefix("factor_"),
        met(rules.service_obligations, "service"),
        met(rules.publicity_obligations, "publicity"),
    ]
    for part in parts:
        figures = figures.join(part.apply(pd.to_numeric), how="left")
    return figures.fillna(0).reset_index()


def counted_bases(session: Session, cfg: CampaignConfig) -> pd.DataFrame:
    """The year's named bases as the plan counts them (models/assessment.bases_counted)."""
    base = NamedBase.__table__  # type: ignore[attr-defined]
    app = PoolApplication.__table__  # type: ignore[attr-defined]
    columns = ["unit_key", "level", "application_id", "region_key", "assistance_workshop"]
    columns += ["entrepreneurs_driven", "jobs", "poverty_jobs"]
    named = query_frame(
        session,
        sa.select(
            base.c.unit_key,
            base.c.level,
            base.c.application_id,
            app.c.region_key,
            app.c.assistance_workshop,
            app.c.entrepreneurs_driven,
            app.c.jobs,
            app.c.poverty_jobs,
        )
        .join(app, app.c.id == base.c.application_id)
        .where(base.c.year == cfg.campaign.year, base.c.status == BaseStatus.named.value),
        columns,
    )
    hierarchy = Hierarchy.of(cfg.units)
    city = {key: hierarchy.chain(key).get(Level.city, key) for key in hierarchy.units}
    kept = bases_counted(named, city)
    return kept.assign(assistance_workshop=kept["assistance_workshop"].astype(bool).astype(int))


# ------------------------------------------------------------------ the report
def _labels(cfg: CampaignConfig) -> dict[str, str]:
    return {u.key: u.name for u in cfg.units}


def report_tables(
    cfg: CampaignConfig, totals: pd.DataFrame, scored: pd.DataFrame
) -> list[tuple[str, pd.DataFrame]]:
    """The summary and one table per indicator, with Chinese headers, cities in rank order."""
    rules = assessment_of(cfg)
    names = _labels(cfg)
    order = scored.index
    summary = pd.DataFrame({"排名": scored["rank"], "市州": [names[k] for k in order]}, index=order)
    for indicator in rules.indicators:
        summary[f"{indicator.title}得分"] = scored[f"{indicator.measure}_score"]
    summary["总分"] = scored["total"]
    tables = [("汇总", summary.reset_index(drop=True))]
    for indicator in rules.indicators:
        spec = MEASURES[indicator.measure]
        table = pd.DataFrame({"排名": scored["rank"], "市州": [names[k] for k in order]}, index=order)
        if indicator.measure == "bases_built":
            table["年度建设计划"] = totals.loc[order, "plan"]
        for column, header in spec.components.items():
            table[header] = totals.loc[order, column]
            table[f"{header}：市本级"] = totals.loc[order, f"{column}_own"]
            table[f"{header}：所属县（市、区）"] = totals.loc[order, f"{column}_counties"]
        table["完成情况"] = scored[f"{indicator.measure}_shown"]
        table["参照"] = spec.reference
        table["完成率"] = scored[f"{indicator.measure}_achieved"]
        table[f"得分（满分 {indicator.weight:g}）"] = scored[f"{indicator.measure}_score"]
        tables.append((indicator.title, table.reset_index(drop=True)))
    return tables


def _embedded(path: Path) -> str:
    return f"![{path.stem}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"


@task(
    name="assess",
    description="按市州（含所属县（市、区））计算年度考核得分，生成考核表、图表和各市评分卡",
    cache_policy=NO_CACHE,
)
def assess(cfg: CampaignConfig, today: dt.date) -> dict[str, Any]:
    """Score every city as of today; on or after `final_on`, send each city its scorecard."""
    rules = assessment_of(cfg)
    year = cfg.campaign.year
    final = today >= rules.final_on
    as_of = min(today, rules.final_on)
    with session_scope() as session:
        figures = gather_figures(session, cfg, as_of)
        levels = level_plan(counted_bases(session, cfg), cfg.campaign.quotas.by_level)
    totals = city_totals(figures, dict(cfg.campaign.quotas.by_city))
    scored = score(totals, rules, final=final)
    names = _labels(cfg)
    folder = get_settings().reports / str(year) / "assessment"
    stage = "" if final else "（过程稿）"
    title = f"{year}年度返乡入乡创业基地建设目标责任考核{stage}"
    note = f"数据截至 {as_of.isoformat()}；各市州数据含所属县（市、区）分解指标完成情况。满分 {full_marks(rules):g} 分。"
    if not final:
        note += (
            f"过程稿：尚无到期事项的指标记为“{NOT_DUE_LABEL}”，不计分；总分只反映已到期的事项，不是最终成绩。"
        )
    if rules.illustrative:
        note += rules.note
    tables = report_tables(cfg, totals, scored)
    # 一 省、市、县三级: each level's plan, province-wide (a sheet of the workbook, not of a city's scorecard)
    workbook = write_report(
        folder / f"{title}.xlsx", title, [tables[0], ("分级完成情况", levels), *tables[1:]], note
    )
    labels = [names[k] for k in scored.index]
    charts = [
        bar_chart(folder / "scores.png", f"{year}年度各市州考核总分", labels, scored["total"].tolist(), "分"),
        paired_bar_chart(
            folder / "plan-vs-named.png",
            f"{year}年度基地建设计划与命名数",
            labels,
            {
                "计划": totals.loc[scored.index, "plan"].tolist(),
                "已命名": totals.loc[scored.index, "bases_named"].tolist(),
            },
            "个",
        ),
    ]
    summary = tables[0][1]
    first = ["排名", "市州", "总分"]  # the UI shows the first columns without scrolling
    summary = summary[first + [c for c in summary.columns if c not in first]]
    publish_table("assessment-summary", summary, f"{title}。{note}", year=cfg.campaign.year)
    create_markdown_artifact(
        key="assessment-charts",
        markdown=f"### {title}\n\n{note}\n\n考核表（下载）：{report_link(workbook)}\n\n"
        + "#### 全省分级建设计划完成情况\n\n"
        + markdown_table(levels)
        + "\n\n"
        + "\n\n".join(_embedded(c) for c in charts),
        description=f"{title}：图表",
    )
    counts: dict[str, Any] = {
        "cities": len(scored),
        "workbook": str(workbook),
        "final": final,
        "scorecards": 0,
    }
    if final:
        counts["scorecards"] = send_scorecards(cfg, tables, scored, folder, title, note, today)
    return counts


def send_scorecards(
    cfg: CampaignConfig,
    tables: list[tuple[str, pd.DataFrame]],
    scored: pd.DataFrame,
    folder: Path,
    title: str,
    note: str,
    today: dt.date,
) -> int:
    """Each city gets its own rows of every table; a changed scorecard is sent again, an unchanged never."""
    rules = assessment_of(cfg)
    units = {u.key: u for u in cfg.units}
    decisions = []
    for key in scored.index:
        unit = units[key]
        own = [(name, table[table["市州"] == unit.name]) for name, table in tables]
        digest = hashlib.sha256("".join(t.to_csv(index=False) for _, t in own).encode()).hexdigest()[:12]
        path = write_report(
            folder / "scorecards" / f"{unit.name}-{digest}.xlsx", f"{title}：{unit.name}", own, note
        )
        row = scored.loc[key]
        items = [
            {
                "title": i.title,
                "score": row[f"{i.measure}_score"],
                "weight": i.weight,
                "shown": row[f"{i.measure}_shown"],
            }
            for i in rules.indicators
        ]
        message = render(
            "scorecard",
            {
                "unit": unit,
                "title": title,
                "items": items,
                "total": row["total"],
                "rank": int(row["rank"]),
                "cities": len(scored),
            },
        )
        decisions.append(
            Decision(
                key,
                None,
                MessageKind.scorecard,
                "final",
                outbox_key(MessageKind.scorecard, cfg.campaign.year, key, digest),
                message,
                str(path),
            )
        )
    province = cfg.province
    with session_scope() as session:
        sent = enqueue(session, decisions)
        done = pd.DataFrame(
            [{"unit_key": province.key, "subject": "", "period": str(cfg.campaign.year), "done": 1}]
        )
        settle(session, cfg, rules.obligation, done, moment(today, cfg.campaign))
    return sent


@task(name="income-progress", description="统计增收情况表报送情况", cache_policy=NO_CACHE)
def income_progress(cfg: CampaignConfig, today: dt.date) -> dict[str, int]:
    rules = assessment_of(cfg)
    table = IncomeRecord.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        senders = query_frame(
            session,
            sa.select(table.c.unit_key).where(table.c.year == cfg.campaign.year).distinct(),
            ["unit_key"],
        )
        progress = senders.assign(subject="", period=str(cfg.campaign.year), done=1)
        return {
            "settled": settle(session, cfg, rules.income_obligation, progress, moment(today, cfg.campaign))
        }
