"""三(二)、四(二) The 入库标准表: the admission bar a city or county files with its standards.

"市县两级基地建设标准和培育库入库标准于 6 月底前报省厅备案", and "市县可在本级基地建设标准基础上降低入库
条件": each unit's pool admits against the bar it filed. The standards themselves are documents (the
`standards_filing` obligation); the bar in them arrives as this one-row sheet, so it is read, checked and
applied as data instead of being copied into the campaign file by hand.

A filed bar replaces the campaign file's `pool.unit_admission` entry for that unit, which replaces the
level's default (`pool.admission`). Area: 0 or blank means no requirement on that measure; meeting
either of premises and planted area is enough, as in every bar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from config.schema import AdmissionBar, PoolRules, Unit
from models.sheets import CheckContext, Column, ErrorFn, Sheet

AREA_FIELDS = ("min_premises_m2", "min_planted_mu")


def _own_bar_only(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
    """A unit files its own bar: a city may not file its counties' (each county files its own)."""
    error(out["unit_key"] != ctx.sender_key, STANDARD_SHEET.by_field["unit_key"], "只能报送本单位的入库标准")


STANDARD_SHEET = Sheet(
    title="入库标准表",
    columns=(
        Column("单位", "unit_key", "unit", hint="留空即报送单位"),
        Column("经营年限（年）", "min_years_operating", "number", True, limit=50),
        Column(
            "经营场所面积（平方米）",
            "min_premises_m2",
            "number",
            limit=1_000_000,
            hint="与种植面积满足其一即可；不设此项填 0 或留空",
        ),
        Column("种植面积（亩）", "min_planted_mu", "number", limit=1_000_000, hint="不设此项填 0 或留空"),
        Column("带动创业人数", "min_entrepreneurs_driven", "count", True, limit=100_000),
        Column("吸纳就业人数", "min_jobs", "count", True, limit=100_000),
        Column("员工人均年工资（元）", "min_avg_wage_yuan", "number", True, limit=10_000_000),
    ),
    identity=("unit_key",),
    example_file="乾安县-入库标准表.xlsx",
    date_label="报送日期",
    rules=(_own_bar_only,),
    instructions=(
        "一个单位一行：本单位培育库的入库条件（可在本级基地建设标准基础上降低）。",
        "经审核接收后即作为本单位培育库的入库条件；重报将更新原标准。",
    ),
)
BAR_COLUMNS = [c.field for c in STANDARD_SHEET.columns if c.field != "unit_key"]


def filed_bar(row: Mapping[str, Any]) -> AdmissionBar:
    """One filed row as a bar; an area of 0 sets no requirement on that measure."""
    values = {field: row[field] for field in BAR_COLUMNS}
    for field in AREA_FIELDS:
        if not values[field]:
            values[field] = None
    return AdmissionBar(**values)


def with_filed_bars(rules: PoolRules, filed: Iterable[Mapping[str, Any]]) -> PoolRules:
    """The pool rules with each filed bar (rows with `unit_key` and the bar fields) as its unit's bar."""
    bars = {str(row["unit_key"]): filed_bar(row) for row in filed}
    if not bars:
        return rules
    return rules.model_copy(update={"unit_admission": {**rules.unit_admission, **bars}})


def units_without_a_bar(units: Iterable[Unit], filed: Iterable[str]) -> list[Unit]:
    """Cities and counties (every unit with a unit above it) that filed no 入库标准表."""
    have = set(filed)
    return [u for u in units if u.reports_to is not None and u.key not in have]
