"""The standing registry's first year: the province's own list of an earlier year's pool and bases
(往年培育库及基地名录), imported once so that a first campaign does not start empty.

A row is a pool project as the application sheet has it, plus where it stands: the year it entered
its current pool, that pool's level (县级/市级/省级: above its own level means it was recommended up,
level by level), and its naming (level, year, tier, naming document), if it was named. The checks are
the application sheet's and these; nothing of the row is judged against this year's bars: it is a
record of what earlier years decided.
"""

from __future__ import annotations

import pandas as pd

from config.schema import Level
from models.applications import COLUMNS
from models.pool import LEVEL_OF_LABEL, RANK
from models.sheets import CheckContext, Column, ErrorFn, Sheet

REGISTRY_LEVELS = ("县级", "市级", "省级")
NOT_NAMED = "无"
REGISTRY_NOTE = "往年名录导入"

_OWN = tuple(c for c in COLUMNS if c.field != "declared_level")
REGISTRY_COLUMNS: tuple[Column, ...] = (
    *_OWN,
    Column("入库年度", "pool_year", "count", True, hint="进入所在培育库的年度，须早于本年度", limit=2100),
    Column("所在培育库", "pool_level", "enum", True, REGISTRY_LEVELS, hint="高于本级的，视为已逐级推荐"),
    Column("命名层级", "named_level", "enum", False, (*REGISTRY_LEVELS, NOT_NAMED), default=NOT_NAMED),
    Column("命名年度", "named_year", "count", hint="已命名的基地必填", limit=2100),
    Column("档次", "tier", "text"),
    Column("命名文件文号", "decree_no", "text", hint="已命名的基地必填"),
)
BY_FIELD = {c.field: c for c in REGISTRY_COLUMNS}


def registry_sheet(year: int, levels: dict[str, Level]) -> Sheet:
    """The list for the campaign of `year`: every year in it is an earlier one. `levels`: each unit's
    level, for a project's own pool (its county's, or a city-level unit's)."""

    def rules(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
        error(out["poverty_jobs"] > out["jobs"], BY_FIELD["poverty_jobs"], "大于吸纳就业人数")
        keys = pd.Series(list(zip(out["credit_code"], out["project_name"], strict=True)), index=out.index)
        error(
            keys.map(lambda key: key in ctx.projects).astype(bool),
            BY_FIELD["project_name"],
            f"该项目已在 {year} 年度申报，往年名录不覆盖本年度的申报",
        )
        error(
            out["pool_year"] >= year,
            BY_FIELD["pool_year"],
            f"须早于 {year} 年度（本年度的入库请报培育库申报表）",
        )
        error(out["pool_year"] < 2000, BY_FIELD["pool_year"], "年度不合理")
        own = out["region_key"].map(lambda k: RANK[levels[k]] if k in levels else 0)
        pool = out["pool_level"].map(lambda v: RANK[LEVEL_OF_LABEL[v]] if v in LEVEL_OF_LABEL else 0)
        error(pool < own, BY_FIELD["pool_level"], "低于项目所在单位的本级培育库")
        named = out["named_level"] != NOT_NAMED
        named_rank = out["named_level"].map(lambda v: RANK[LEVEL_OF_LABEL[v]] if v in LEVEL_OF_LABEL else 0)
        error(
            named & (named_rank > pool),
            BY_FIELD["named_level"],
            "高于所在培育库：命名基地应在本级或更高的培育库中",
        )
        error(named & (named_rank < own), BY_FIELD["named_level"], "低于项目所在单位的层级")
        error(named & (out["named_year"] == 0), BY_FIELD["named_year"], "已命名的基地须填写命名年度")
        error(
            named & (out["named_year"] != 0) & ((out["named_year"] >= year) | (out["named_year"] < 2000)),
            BY_FIELD["named_year"],
            f"须早于 {year} 年度",
        )
        error(
            named & (out["decree_no"].fillna("").str.strip() == ""),
            BY_FIELD["decree_no"],
            "已命名的基地须填写命名文件文号",
        )

    return Sheet(
        title="往年培育库及基地名录",
        columns=REGISTRY_COLUMNS,
        identity=("project_name", "credit_code"),
        example_file="吉林省-往年培育库及基地名录.xlsx",
        date_label="导入日期",
        rules=(rules,),
        instructions=(
            "首个年度使用：导入省级掌握的往年三级培育库项目和已命名基地，培育库和基地跨年度延续。",
            "所在培育库高于项目所在单位本级的，视为已逐级推荐（县级 → 市级 → 省级），推荐单位须继续包保、每季度走访一次。",
            "已命名的基地填写命名层级、命名年度、档次和命名文件文号；同一项目（统一社会信用代码与项目名称相同）重报将更新原记录。",
        ),
    )
