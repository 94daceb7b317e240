"""四(三) The year-end target assessment of each city, its counties' shares included: pure rules.

Every figure is gathered per unit (city and county alike) as additive components — counts, amounts,
obligations due and met — and summed into the city it belongs to; an indicator's achievement is then
computed from the city's totals, so a rate is never averaged over counties:

| measure            | components                                  | achievement (0–1)                        |
|--------------------|---------------------------------------------|------------------------------------------|
| bases_built        | bases named (provincial ones there, 就业帮扶车间) | named ÷ the city's plan, at most 1  |
| startups_and_jobs  | start-ups driven, jobs absorbed             | their sum ÷ the best city's              |
| poverty_jobs       | jobs of people lifted out of poverty        | ÷ the best city's                        |
| income_growth      | employees' average income, last year, this  | growth rate ÷ the best city's (≥ 0)      |
| funds              | allocated, arrived, executed (专项资金)      | arrival and execution rate by `funds_mix` |
| services           | service obligations due, met (a level's     | met ÷ due and served ÷ pool by           |
|                    | "原则上" ones left out); pool projects,      | `services_mix`                           |
|                    | those served (visit, posting or training)   |                                          |
| publicity          | publicity obligations due, met              | met ÷ due                                |

An indicator's score is its weight × achievement; the total is their sum; cities rank by total
(equal totals share a rank). Services and publicity with nothing due yet are "not yet due": in a draft
(before `final_on`) they score nothing and say so, so a draft never flatters; in the final assessment a
city that owed nothing all year has nothing to lose and keeps the indicator's full marks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from config.schema import LEVEL_LABELS, AssessmentRules, Level, Measure
from models.pool import RANK
from models.services import PROJECT_COLUMNS, resolve_projects
from models.sheets import Column, Sheet

NOT_DUE = np.nan  # an achievement with nothing due yet
NOT_DUE_LABEL = "未到期（不计分）"


@dataclass(frozen=True)
class MeasureSpec:
    components: dict[str, str]  # column -> Chinese header
    achievement: Callable[[pd.DataFrame, AssessmentRules], pd.Series]  # city totals (with `plan`) -> 0..1
    shown: Callable[[pd.DataFrame], pd.Series]  # city totals -> what was achieved, in words
    reference: str  # what the achievement is measured against


def _ratio(numerator: pd.Series, denominator: pd.Series, empty: float) -> pd.Series:
    return (numerator / denominator.where(denominator > 0)).fillna(empty)


def _mean_of(*rates: tuple[pd.Series, float]) -> pd.Series:
    """The mean of the rates that are due (not NaN), each by its weight; NaN when none is."""
    weighted = sum(rate.fillna(0) * weight for rate, weight in rates)
    weights = sum(rate.notna() * weight for rate, weight in rates)
    return weighted / weights.where(weights > 0)


def _to_best(values: pd.Series) -> pd.Series:
    """四(三) gives no scale: a figure is scored against the best city's (对标最高值, 示意; the 2022 file's
    `illustrative_values` names it under assessment.indicators)."""
    best = values.max()
    return values.clip(lower=0) / best if best > 0 else pd.Series(0.0, index=values.index)


def _pct(values: pd.Series) -> pd.Series:
    return values.map(lambda v: f"{v:.1%}")


def growth(frame: pd.DataFrame) -> pd.Series:
    return _ratio(frame["income_this"] - frame["income_last"], frame["income_last"], 0.0)


def arrival_rate(frame: pd.DataFrame, prefix: str = "") -> pd.Series:
    return _ratio(frame[f"{prefix}arrived"], frame[f"{prefix}allocated"], 0.0)


def execution_rate(frame: pd.DataFrame, prefix: str = "") -> pd.Series:
    return _ratio(frame[f"{prefix}executed"], frame[f"{prefix}allocated"], 0.0)


MEASURES: dict[Measure, MeasureSpec] = {
    Measure.bases_built: MeasureSpec(
        # 一 "以基地为载体建设就业帮扶车间": counted with the bases, not scored on its own
        {"bases_named": "命名基地数", "provincial": "其中省级基地", "workshops": "其中就业帮扶车间"},
        lambda f, r: _ratio(f["bases_named"], f["plan"], 0.0).clip(upper=1),
        lambda f: f["bases_named"].astype(int).astype(str) + " / 计划 " + f["plan"].astype(int).astype(str),
        "年度建设计划",
    ),
    Measure.startups_and_jobs: MeasureSpec(
        {"startups": "带动创业人数", "jobs": "吸纳就业人数"},
        lambda f, r: _to_best(f["startups"] + f["jobs"]),
        lambda f: (f["startups"] + f["jobs"]).astype(int).astype(str) + " 人",
        "各市州最高值",
    ),
    Measure.poverty_jobs: MeasureSpec(
        {"poverty_jobs": "带动脱贫人口就业人数"},
        lambda f, r: _to_best(f["poverty_jobs"]),
        lambda f: f["poverty_jobs"].astype(int).astype(str) + " 人",
        "各市州最高值",
    ),
    Measure.income_growth: MeasureSpec(
        {"income_last": "上年度员工人均年收入合计（元）", "income_this": "本年度员工人均年收入合计（元）"},
        lambda f, r: _to_best(growth(f)),
        lambda f: "增长 " + _pct(growth(f)),
        "各市州最高增长率",
    ),
    Measure.funds: MeasureSpec(
        {
            "allocated": "专项资金下达（万元）",
            "arrived": "专项资金到位（万元）",
            "executed": "专项资金支出（万元）",
            "factor_allocated": "其中因素法下达（万元）",
            "factor_arrived": "其中因素法到位（万元）",
            "factor_executed": "其中因素法支出（万元）",
        },
        lambda f, r: (
            arrival_rate(f) * r.funds_mix.arrival_rate + execution_rate(f) * r.funds_mix.execution_rate
        ).clip(upper=1),
        lambda f: "到位率 " + _pct(arrival_rate(f)) + "，执行率 " + _pct(execution_rate(f)),
        "专项资金到位率、执行率 100%",
    ),
    Measure.services: MeasureSpec(
        {
            "service_due": "应完成服务事项",
            "service_met": "已完成服务事项",
            "pool_projects": "入库项目",
            "served_projects": "已服务入库项目",
        },
        # 三(四) "三送…对象上要涵盖本级全部入库项目": the duties met and the pool covered, by `services_mix`
        lambda f, r: _mean_of(
            (_ratio(f["service_met"], f["service_due"], NOT_DUE), r.services_mix.duties),
            (_ratio(f["served_projects"], f["pool_projects"], NOT_DUE), r.services_mix.coverage),
        ),
        lambda f: (
            "事项 "
            + f["service_met"].astype(int).astype(str)
            + " / "
            + f["service_due"].astype(int).astype(str)
            + "，三送覆盖 "
            + f["served_projects"].astype(int).astype(str)
            + " / "
            + f["pool_projects"].astype(int).astype(str)
        ),
        "包保、走访、培训应完成事项（“原则上”的不计）；三送覆盖全部入库项目",
    ),
    Measure.publicity: MeasureSpec(
        {"publicity_due": "应完成宣传事项", "publicity_met": "已完成宣传事项"},
        lambda f, r: _ratio(f["publicity_met"], f["publicity_due"], NOT_DUE),
        lambda f: (
            f["publicity_met"].astype(int).astype(str) + " / " + f["publicity_due"].astype(int).astype(str)
        ),
        "优秀典型、经验材料应完成事项",
    ),
}
COMPONENTS = [c for spec in MEASURES.values() for c in spec.components]


def duties_counted(
    rows: pd.DataFrame, principle_only: Mapping[str, Collection[str]], prefix: str
) -> pd.DataFrame:
    """Per unit, the duties an indicator counts, from `rows` (unit_key, obligation_key, due, met: one row
    per unit and obligation). A duty that is only a principle for the unit (`principle_only`: obligation
    key -> unit keys; 三(四) 县级"原则上不少于1次") is reminded, never scored: left out whether met or not.
    Returns `<prefix>_due` and `<prefix>_met` by unit_key."""
    columns = [f"{prefix}_due", f"{prefix}_met"]
    if rows.empty:
        return pd.DataFrame(columns=columns, index=pd.Index([], name="unit_key"))
    pairs = {(key, unit) for key, units in principle_only.items() for unit in units}
    principle = pd.Series(
        [(k, u) in pairs for k, u in zip(rows["obligation_key"], rows["unit_key"], strict=True)],
        index=rows.index,
    )
    kept = rows[~principle]
    return kept.groupby("unit_key")[["due", "met"]].sum().set_axis(columns, axis=1)


def city_totals(figures: pd.DataFrame, plan: dict[str, int]) -> pd.DataFrame:
    """Sum each unit's components into its city. `figures`: unit_key, city_key, is_city, COMPONENTS.

    Returns per city: every component's total, its city-own and counties' parts (`<c>_own`,
    `<c>_counties`), and the plan.
    """
    figures = figures.reindex(columns=["unit_key", "city_key", "is_city", *COMPONENTS]).fillna(
        {c: 0 for c in COMPONENTS}
    )
    totals = figures.groupby("city_key")[COMPONENTS].sum()
    own = (
        figures[figures["is_city"]].groupby("city_key")[COMPONENTS].sum().reindex(totals.index, fill_value=0)
    )
    counties = totals - own
    out = pd.concat([totals, own.add_suffix("_own"), counties.add_suffix("_counties")], axis=1)
    out["plan"] = pd.Series(plan, dtype=float).reindex(out.index).fillna(0)
    return out


def score(totals: pd.DataFrame, rules: AssessmentRules, *, final: bool = True) -> pd.DataFrame:
    """Per city: each indicator's achievement and score, the total and the rank. Nothing due yet scores
    nothing in a draft (`final=False`) and full marks in the final assessment."""
    out = pd.DataFrame(index=totals.index)
    for indicator in rules.indicators:
        spec = MEASURES[indicator.measure]
        achieved = spec.achievement(totals, rules).astype(float)
        not_due = achieved.isna()
        achieved = achieved.fillna(1.0 if final else 0.0)
        out[f"{indicator.measure}_achieved"] = achieved
        shown = spec.shown(totals)
        out[f"{indicator.measure}_shown"] = shown if final else shown.mask(not_due, NOT_DUE_LABEL)
        out[f"{indicator.measure}_score"] = (achieved * indicator.weight).round(2)
    score_columns = [f"{i.measure}_score" for i in rules.indicators]
    out["total"] = out[score_columns].sum(axis=1).round(2)
    out["rank"] = out["total"].rank(method="min", ascending=False).astype(int)
    return out.sort_values(["rank"], kind="stable")


def full_marks(rules: AssessmentRules) -> float:
    return float(np.sum([i.weight for i in rules.indicators]))


INCOME_SHEET = Sheet(
    title="增收情况表",
    columns=(
        *PROJECT_COLUMNS,
        Column("上年度员工人均年收入（元）", "income_last_year", "number", True, limit=2_000_000),
        Column("本年度员工人均年收入（元）", "income_this_year", "number", True, limit=2_000_000),
    ),
    identity=("project_name", "credit_code"),
    example_file="乾安县-增收情况表.xlsx",
    rules=(resolve_projects,),
    instructions=(
        "本级命名基地每个一行；重报同一项目将更新原记录。",
        "计入年度考核经济效益指标（增收致富情况），按市州汇总（含所属县（市、区））。",
    ),
)


# ------------------------------------------------------------------ the plan of bases (一)
def bases_counted(named: pd.DataFrame, city_of_region: Mapping[str, str]) -> pd.DataFrame:
    """Named bases as the plan counts them: each project once, at the highest level that named it (a
    county base named again by its city is one base, the city's), for the unit that named it; a
    provincial base counts for the city it lies in.

    `named`: unit_key, level, application_id, region_key (and any figures). Returns the kept rows with
    `counts_for` and `provincial`.
    """
    ranked = named.assign(_rank=named["level"].map({level.value: RANK[level] for level in Level}))
    kept = ranked.sort_values("_rank", ascending=False, kind="stable").drop_duplicates("application_id")
    provincial = kept["level"] == Level.province.value
    counts_for = kept["unit_key"].where(~provincial, kept["region_key"].map(city_of_region))
    return kept.drop(columns="_rank").assign(counts_for=counts_for, provincial=provincial)


def level_plan(kept: pd.DataFrame, by_level: Mapping[Level, int]) -> pd.DataFrame:
    """Bases named at each level (`bases_counted`'s rows) against that level's plan."""
    rows = []
    for level in (Level.province, Level.city, Level.county):
        named, planned = int((kept["level"] == level.value).sum()), by_level.get(level, 0)
        rate = f"{named / planned:.1%}" if planned else "—"
        rows.append({"级别": LEVEL_LABELS[level], "计划": planned, "已命名": named, "完成率": rate})
    return pd.DataFrame(rows)
