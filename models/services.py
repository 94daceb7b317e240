"""三(四) 三送 services and 三(五) funds: the sheets bureaus send, and the rules over what they record.

Pure and vectorised: frames in, frames out. The lists and targets come from the campaign's
`services:` section; which periods are owed comes from models/deadlines.py, like every deadline.

- 包保 and visits: every project a unit recommended upward has a main leader of that unit and is
  visited once a quarter, from the first quarter with enough working days left after the approval.
- Trainings count against each unit's target per period (entrepreneur: 1 per half-year; agri-tech:
  city 2, county 1 a year).
- Funds: arrival rate = arrived / allocated, execution rate = executed / allocated, per unit, over the
  special funds (专项资金: `special_sources`), against each checkpoint's targets; provincial special
  funds spent outside the eligible purposes are
  diversion; the prior year's city-level base subsidies must be paid within a tolerance of the
  provincial ones.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from config.schema import Campaign, FundsRules, FundTarget, Obligation, Services
from models.deadlines import Period, periods, working_days_left
from models.sheets import CheckContext, Column, ErrorFn, Sheet
from models.workdays import WorkingCalendar

PROJECT_COLUMNS = (
    Column("项目名称", "project_name", "text", True, hint="须与培育库申报表中的项目名称一致"),
    Column(
        "统一社会信用代码", "credit_code", "uscc", True, hint="须与培育库申报表一致；18 位，请设为文本格式"
    ),
)
LINKED_SEPARATORS = r"[、,，;；]+"  # between project names in a training's 关联项目
NOT_IN_POOL = "培育库中没有该项目（项目名称与统一社会信用代码须与本辖区的培育库申报一致）"


def resolve_projects(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
    """A row naming a pool project must name one of the sender's jurisdiction; its id is kept."""
    keys = pd.Series(list(zip(out["credit_code"], out["project_name"], strict=True)), index=out.index)
    out["application_id"] = keys.map(ctx.projects).astype("Int64")
    error(out["application_id"].isna(), PROJECT_COLUMNS[0], NOT_IN_POOL)


# ------------------------------------------------------------------ sheets
def visit_sheet(services: Services) -> Sheet:
    return Sheet(
        title="走访记录表",
        columns=(
            *PROJECT_COLUMNS,
            Column("走访日期", "visited_on", "date", True),
            Column("走访领导", "leader_name", "text", True),
            Column("领导职务", "leader_title", "text"),
            Column("走访单位", "unit_key", "unit", hint="留空即报送单位；市级可代所辖县报送"),
            Column("走访情况", "findings", "text"),
            Column(
                "需求类别",
                "need_categories",
                "multi",
                choices=services.need_categories,
                hint="可多选，以“、”分隔",
            ),
            Column("需求描述", "needs", "text"),
            Column("已提供服务", "services", "text"),
        ),
        identity=("project_name", "credit_code", "visited_on", "unit_key"),
        example_file="乾安县-走访记录表.xlsx",
        rules=(resolve_projects,),
        instructions=(
            "一次走访一行；同一项目同一天同一单位的走访重报将更新原记录。",
            "项目名称与统一社会信用代码须与培育库申报一致；走访记录计入走访单位本季度的包保走访任务。",
        ),
    )


def training_sheet(services: Services) -> Sheet:
    return Sheet(
        title="培训记录表",
        columns=(
            Column("举办单位", "unit_key", "unit", True, hint="市、县级单位名称或行政区划代码"),
            Column("培训类别", "kind", "enum", True, tuple(services.training_kinds)),
            Column("培训日期", "held_on", "date", True),
            Column("培训主题", "topic", "text", True),
            Column("参训人数", "attendees", "count", True, limit=100_000),
            Column("关联项目", "linked_projects", "text", hint="培育库项目名称，多个以“、”分隔"),
            Column("备注", "note", "text"),
        ),
        identity=("unit_key", "kind", "held_on", "topic"),
        example_file="乾安县-培训记录表.xlsx",
        rules=(_linked_projects_known,),
        instructions=("一期培训一行；同一单位同一天同一主题的培训重报将更新原记录。",),
    )


def _linked_projects_known(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
    names = {name for _, name in ctx.projects}
    parts = out["linked_projects"].str.split(LINKED_SEPARATORS, regex=True).explode().str.strip()
    unknown = parts[(parts != "") & parts.notna() & ~parts.isin(names)]
    if not unknown.empty:
        listed = unknown.groupby(level=0).agg("、".join)
        mask = pd.Series(False, index=out.index)
        mask[listed.index] = True
        column = Column("关联项目", "linked_projects", "text")
        warn(mask, column, "不在本辖区培育库中：" + listed.reindex(out.index).fillna(""))


def fund_sheet(funds: FundsRules) -> Sheet:
    return Sheet(
        title="资金台账",
        columns=(
            Column("单位", "unit_key", "unit", True, hint="资金所属的市、县级单位"),
            Column("资金来源", "source", "enum", True, funds.sources),
            Column(
                "资金年度", "fund_year", "count", True, hint="资金所属年度，如 2022；2021 年度基地补助填 2021"
            ),
            Column("资金文号", "document_no", "text", True, hint="下达资金的文件文号，与用途一起识别一行"),
            Column(
                "用途",
                "purpose",
                "text",
                True,
                hint="省级专项资金可用于：" + "、".join(funds.eligible_purposes),
            ),
            Column("下达金额（万元）", "allocated", "number", True, limit=1_000_000),
            Column("下达日期", "allocated_on", "date", True),
            Column("到位金额（万元）", "arrived", "number", limit=1_000_000),
            Column("到位日期", "arrived_on", "date"),
            Column("支出金额（万元）", "executed", "number", limit=1_000_000),
            Column("支出日期", "executed_on", "date"),
            Column("备注", "note", "text"),
        ),
        identity=("unit_key", "document_no", "purpose"),
        example_file="乾安县-资金台账.xlsx",
        rules=(_fund_amounts_consistent,),
        instructions=(
            "每次报送全部台账：同一单位、同一资金文号与用途的行重报将更新原记录。",
            "到位、支出金额为截至填报日的累计数；填写金额须同时填写日期。",
            "省级专项资金用于可用范围以外的用途，一经支出即作为挪用情况报告省厅。",
        ),
    )


def _fund_amounts_consistent(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
    col = {
        c: Column(h, c, "number")
        for c, h in (("arrived", "到位金额（万元）"), ("executed", "支出金额（万元）"))
    }
    error(out["arrived"] > out["allocated"] + 1e-9, col["arrived"], "大于下达金额")
    error(out["executed"] > out["arrived"] + 1e-9, col["executed"], "大于到位金额")
    for amount, day, label in (
        ("arrived", "arrived_on", "到位日期"),
        ("executed", "executed_on", "支出日期"),
    ):
        error((out[amount] > 0) & out[day].isna(), col[amount], f"已填金额，{label}为空")
    year = out["fund_year"]
    bad_year = (year < ctx.earliest.year - 5) | (year > ctx.application_date.year)
    error(bad_year, Column("资金年度", "fund_year", "count"), "年度不合理")


POSTING_SHEET = Sheet(
    title="招聘发布记录表",
    columns=(
        *PROJECT_COLUMNS,
        Column("发布日期", "posted_on", "date", True),
        Column("发布条数", "postings", "count", True, limit=10_000),
        Column("招聘岗位数", "positions", "count", limit=100_000),
        Column("备注", "note", "text", hint="如平台信息编号"),
    ),
    identity=("project_name", "credit_code", "posted_on"),
    example_file="乾安县-招聘发布记录表.xlsx",
    rules=(resolve_projects,),
    instructions=(
        "“96885吉人在线”平台没有对外数据接口：本表是各地为培育库项目免费发布招聘信息的登记，按项目和发布日期各填一行。",
    ),
)


# ------------------------------------------------------------------ rules
def first_owed_periods(
    campaign: Campaign, ob: Obligation, approved_on: dt.date, cal: WorkingCalendar, min_working_days: int
) -> list[Period]:
    """The periods a project approved on `approved_on` is owed visits for.

    From the first period with at least `min_working_days` working days left after the approval:
    a project recommended in the last days of a quarter is first visited the next quarter.
    """
    return [
        p
        for p in periods(campaign, ob)
        if p.due >= approved_on
        and working_days_left(cal, max(approved_on, p.kickoff), p.due) >= min_working_days
    ]


def period_of(days: pd.Series, owed: list[Period]) -> pd.Series:
    """The label of the period each date falls in ("" outside them all), from what counts toward it:
    a training in April counts for the year even though the notice came in June."""
    out = pd.Series("", index=days.index, dtype=object)
    stamps = pd.to_datetime(days)
    for p in owed:
        out[(stamps >= pd.Timestamp(p.opens)) & (stamps <= pd.Timestamp(p.due))] = p.label
    return out


def training_progress(trainings: pd.DataFrame, campaign: Campaign, services: Services) -> pd.DataFrame:
    """Trainings held per obligation, unit and period: obligation_key, unit_key, period, done."""
    frames = []
    for label, key in services.training_kinds.items():
        ob = campaign.obligation(key)
        rows = trainings[trainings["kind"] == label]
        if rows.empty:
            continue
        labelled = rows.assign(period=period_of(rows["held_on"], periods(campaign, ob)), obligation_key=key)
        frames.append(labelled[labelled["period"] != ""])
    if not frames:
        return pd.DataFrame(columns=["obligation_key", "unit_key", "period", "done"])
    all_rows = pd.concat(frames, ignore_index=True)
    return all_rows.groupby(["obligation_key", "unit_key", "period"]).size().rename("done").reset_index()


def count_note(done: pd.Series, required: pd.Series, unit: str = "次") -> pd.Series:
    return "已完成 " + done.astype(str) + f" {unit}，应不少于 " + required.astype(str) + f" {unit}"


def fund_rates(funds: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Per unit, as of a date: allocated, arrived, executed (万元) and the two rates (NaN: nothing allocated).

    Amounts count from the date they were allocated, arrived or spent: a ledger line allocated after
    `as_of` is not yet owed.
    """
    if funds.empty:
        return pd.DataFrame(columns=["allocated", "arrived", "executed", "arrival_rate", "execution_rate"])
    cutoff = pd.Timestamp(as_of)

    def upto(amount: str, day: str) -> pd.Series:
        return funds[amount].where(pd.to_datetime(funds[day]) <= cutoff, 0.0)

    frame = pd.DataFrame(
        {
            "unit_key": funds["unit_key"],
            "allocated": upto("allocated", "allocated_on"),
            "arrived": upto("arrived", "arrived_on"),
            "executed": upto("executed", "executed_on"),
        }
    )
    totals = frame.groupby("unit_key")[["allocated", "arrived", "executed"]].sum()
    base = totals["allocated"].where(totals["allocated"] > 0)
    totals["arrival_rate"] = totals["arrived"] / base
    totals["execution_rate"] = totals["executed"] / base
    return totals


def rate_text(rate: float) -> str:
    return "—" if rate is None or np.isnan(rate) else f"{rate:.1%}"


def special_funds(funds: pd.DataFrame, rules: FundsRules) -> pd.DataFrame:
    """The ledger lines of 专项资金 (三(五) 三个确保: "确保专项资金到位率 100%；确保资金执行率 100%")."""
    return funds[funds["source"].isin(rules.special_sources)] if not funds.empty else funds


def checkpoint_status(
    funds: pd.DataFrame, rules: FundsRules, owing: list[str], target: FundTarget, as_of: dt.date
) -> pd.DataFrame:
    """Per owing unit: met (bool) and a note, the rates over its special funds as of `as_of`.

    A unit with no ledger line allocated by then has not reported; one whose lines are all other money
    (the city's or county's own) has no special funds to bring to the target, and meets it.
    """
    reported = fund_rates(funds, as_of)["allocated"].reindex(owing).fillna(0) > 0
    table = fund_rates(special_funds(funds, rules), as_of).reindex(owing)
    special = table["allocated"].fillna(0) > 0
    arrival_ok = table["arrival_rate"].fillna(0) >= target.arrival_rate - 1e-9
    execution_ok = table["execution_rate"].fillna(0) >= target.execution_rate - 1e-9
    note = (
        "专项资金到位率 "
        + table["arrival_rate"].map(rate_text)
        + f"（应达 {target.arrival_rate:.0%}），执行率 "
        + table["execution_rate"].map(rate_text)
        + f"（应达 {target.execution_rate:.0%}）"
    )
    note = note.where(special, "资金台账中没有已下达的专项资金（到位率、执行率只计专项资金）")
    note = note.where(reported, "未报送资金台账")
    met = reported & (~special | (arrival_ok & execution_ok))
    return pd.DataFrame({"met": met, "note": note}, index=table.index)


def diverted(funds: pd.DataFrame, rules: FundsRules) -> pd.Series:
    """Provincial special funds spent on a purpose outside the eligible list (挪用、挤占)."""
    return (
        (funds["source"] == rules.provincial_source)
        & ~funds["purpose"].isin(rules.eligible_purposes)
        & (funds["executed"] > 0)
    )


def subsidies_out_of_step(funds: pd.DataFrame, rules: FundsRules, today: dt.date) -> pd.DataFrame:
    """Units whose prior-year city-level base subsidies were not paid with the provincial ones.

    Per unit, the first payment (支出日期) of each side: out of step when they are further apart
    than the tolerance, or when one side was paid more than the tolerance ago and the other not at all.
    Returns unit_key, provincial_on, city_on, detail.
    """
    sync = rules.base_subsidy
    columns = ["unit_key", "provincial_on", "city_on", "detail"]
    if sync is None or funds.empty:
        return pd.DataFrame(columns=columns)
    lines = funds[
        (funds["purpose"] == sync.purpose) & (funds["fund_year"] == sync.fund_year) & (funds["executed"] > 0)
    ]
    paid = pd.to_datetime(lines["executed_on"])
    first = lines.assign(paid=paid).groupby(["unit_key", "source"])["paid"].min().unstack()
    prov = first.get(sync.provincial_source, pd.Series(pd.NaT, index=first.index))
    city = first.get(sync.city_source, pd.Series(pd.NaT, index=first.index))
    if first.empty:
        return pd.DataFrame(columns=columns)
    tolerance = pd.Timedelta(days=sync.tolerance_days)
    now = pd.Timestamp(today)
    apart = (prov - city).abs() > tolerance
    city_missing = city.isna() & prov.notna() & (now - prov > tolerance)
    prov_missing = prov.isna() & city.notna() & (now - city > tolerance)
    out = pd.DataFrame({"provincial_on": prov, "city_on": city})[apart | city_missing | prov_missing]

    def say(row: pd.Series) -> str:
        p = row["provincial_on"].date().isoformat() if pd.notna(row["provincial_on"]) else "未发放"
        c = row["city_on"].date().isoformat() if pd.notna(row["city_on"]) else "未发放"
        gap = (
            f"，相差 {abs((row['provincial_on'] - row['city_on']).days)} 天"
            if pd.notna(row["provincial_on"]) and pd.notna(row["city_on"])
            else ""
        )
        return (
            f"{sync.fund_year} 年度{sync.purpose}：{sync.provincial_source}首次发放 {p}，"
            f"{sync.city_source}首次发放 {c}{gap}（应同步发放，允许相差 {sync.tolerance_days} 天）"
        )

    out["detail"] = out.apply(say, axis=1) if not out.empty else pd.Series(dtype=object)
    return out.reset_index().rename(columns={"index": "unit_key"})[columns]


def needs_table(needs: pd.DataFrame, categories: list[str], unit_names: dict[str, str]) -> pd.DataFrame:
    """The needs the visits found, as operators read them: a row per quarter and city, a column per
    category (in the configured order), the number of visits that named it."""
    if needs.empty:
        return pd.DataFrame(columns=["季度", "市州", *categories])
    return (
        needs.assign(市州=needs["city_key"].map(unit_names))
        .pivot_table(
            index=["quarter", "市州"], columns="category", values="visits", aggfunc="sum", fill_value=0
        )
        .reindex(columns=categories, fill_value=0)
        .reset_index()
        .rename(columns={"quarter": "季度"})
    )
