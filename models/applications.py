"""The incubation-pool application sheet (培育库申报表): its columns and its cross-column rule.

Checking is models/sheets.py's, as for every submitted sheet; what is particular to applications is
declared here.
"""

from __future__ import annotations

import pandas as pd

from models.sheets import CheckContext, Checked, Column, ErrorFn, Sheet, check_sheet

ENTITY_TYPES = ("企业", "农民专业合作社", "家庭农场", "其他")
LEADER_CATEGORIES = ("农民工", "大学生", "退役军人", "其他")
SPECIALITIES = ("一县一业", "一乡一特", "一村一品", "无")
GROWTH_STAGES = ("成长期", "上升期", "有潜力", "无")  # 三(五) 三个优先 (2): the first three are preferred
DIRECTIONS = ("乡村振兴", "党委政府重点工作", "区域品牌特色")
DECLARED_LEVELS = ("县级", "市级", "省级")

COLUMNS: tuple[Column, ...] = (
    Column("项目名称", "project_name", "text", True, hint="与信用代码一起识别同一申报，更正后重报请保持不变"),
    Column("申报主体名称", "entity_name", "text", True),
    Column("统一社会信用代码", "credit_code", "uscc", True, hint="18 位，请将本列设为文本格式"),
    Column("主体类型", "entity_type", "enum", True, ENTITY_TYPES),
    Column("负责人姓名", "leader_name", "text", True),
    Column("负责人身份证号", "leader_id", "ric", True, hint="18 位，请将本列设为文本格式，末位 X 大小写均可"),
    Column("负责人类别", "leader_category", "enum", True, LEADER_CATEGORIES),
    Column("联系电话", "phone", "phone", True, hint="手机号 11 位，或带区号的固定电话"),
    Column(
        "所在县（市、区）",
        "region_key",
        "region",
        True,
        hint="县级单位名称或行政区划代码，如“乾安县”或“220723”",
    ),
    Column("乡镇", "township", "text"),
    Column("村", "village", "text"),
    Column("产业类别", "industry", "text", True),
    Column("是否肉牛养殖", "beef_cattle", "bool"),
    Column("成立日期", "founded_on", "date", True, hint="如 2020-05-31、2020/5/31 或 2020年5月31日"),
    Column("经营场所面积（平方米）", "premises_m2", "number", limit=10_000_000),
    Column("种植面积（亩）", "planted_mu", "number", limit=10_000_000),
    Column("带动创业人数", "entrepreneurs_driven", "count", True, limit=100_000),
    Column("吸纳就业人数", "jobs", "count", True, limit=100_000),
    Column("其中脱贫人口就业人数", "poverty_jobs", "count"),
    Column("员工人均年工资（元）", "avg_wage_yuan", "number", True, limit=2_000_000),
    Column("是否就业帮扶车间", "assistance_workshop", "bool"),
    Column("是否边境村", "border_village", "bool"),
    Column("是否空心村", "hollow_village", "bool"),
    Column("特色类型", "speciality", "enum", False, SPECIALITIES, default="无"),
    Column("是否获疫情防控或保耕复产表彰", "commended", "bool"),
    Column("三个助力方向", "directions", "multi", False, DIRECTIONS, hint="可多选，以“、”或“,”分隔"),
    Column("发展阶段", "growth_stage", "enum", False, GROWTH_STAGES, default="无"),
    Column("是否示范性、代表性农业或涉农项目", "demonstrative", "bool"),
    Column("申报层级", "declared_level", "enum", True, DECLARED_LEVELS),
)
BY_FIELD = {c.field: c for c in COLUMNS}


def _poverty_jobs_within_jobs(out: pd.DataFrame, ctx: CheckContext, error: ErrorFn, warn: ErrorFn) -> None:
    error(out["poverty_jobs"] > out["jobs"], BY_FIELD["poverty_jobs"], "大于吸纳就业人数")


APPLICATION_SHEET = Sheet(
    title="培育库申报表",
    columns=COLUMNS,
    identity=("project_name", "credit_code"),
    example_file="乾安县-培育库申报表.xlsx",
    date_label="申报日期",
    rules=(_poverty_jobs_within_jobs,),
    instructions=(
        "更正后重报同一项目（统一社会信用代码与项目名称均不变）将更新原申报，不会重复入库。",
        "身份证号、手机号仅用于核验，系统中只保存脱敏后的号码。",
        "从吉林就业信息管理系统导出的培育库表格可直接报送：其列名和代码与本模板的对照由省级经办人在年度配置的 "
        "imports.pool_intake 中维护。",
    ),
)
EXPECTED_HEADERS = APPLICATION_SHEET.expected_headers


def check_applications(chunk: pd.DataFrame, ctx: CheckContext) -> Checked:
    return check_sheet(chunk, APPLICATION_SHEET, ctx)
