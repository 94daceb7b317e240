"""四(四) Publicity: the sheet in which a city records its typical bases and experience articles."""

from __future__ import annotations

import pandas as pd

from config.schema import Level, PublicityRules, Unit
from models.services import NOT_IN_POOL
from models.sheets import CheckContext, Column, ErrorFn, Sheet


def city_of(unit: Unit) -> str:
    """The city-level unit a unit's figures count for (a city, 梅河口市 and 长白山 count for themselves)."""
    return unit.key if unit.level is not Level.county or unit.reports_to is None else unit.reports_to


def publicity_sheet(rules: PublicityRules) -> Sheet:
    category = Column("类别", "category", "enum", True, tuple(rules.categories))
    project = Column(
        "项目名称", "project_name", "text", hint=f"“{rules.typical_category}”必填，须为本市培育库项目"
    )
    code = Column("统一社会信用代码", "credit_code", "uscc", hint=f"“{rules.typical_category}”必填")

    def typical_bases_are_pool_projects(
        out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn
    ) -> None:
        typical = out["category"] == rules.typical_category
        keys = pd.Series(list(zip(out["credit_code"], out["project_name"], strict=True)), index=out.index)
        out["application_id"] = keys.map(ctx.projects).astype("Int64")
        error(typical & out["application_id"].isna(), project, NOT_IN_POOL)

    return Sheet(
        title="宣传报道记录表",
        columns=(
            category,
            Column("标题", "title", "text", True),
            project,
            code,
            Column("发布媒体", "outlet", "text", hint="新闻媒体或期刊名称；未发布的留空"),
            Column("发布日期", "published_on", "date"),
        ),
        identity=("category", "title"),
        example_file="松原市-宣传报道记录表.xlsx",
        rules=(typical_bases_are_pool_projects,),
        instructions=(
            "一个优秀典型或一篇经验材料一行；同一类别同一标题重报将更新原记录。",
            "县（市、区）报送的计入所属市州。",
        ),
    )
