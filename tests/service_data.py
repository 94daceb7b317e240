"""A small fixture hierarchy and the service sheets' rows, written as bureaus send them.

The hierarchy keeps the traps of the real one: 梅河口市 acts as a city and reports to the province;
松原市 has two counties; 长春市 one. 松原市 and 梅河口市 have a contact whose role makes them 包保
leader; 乾安县 has none, so its leaders must be named by an operator.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from tests.helpers import edit_yaml, recommend_on_admission
from tests.pool_data import application, credit_code, write_xlsx

PROVINCE, SONGYUAN, CHANGCHUN, MEIHEKOU = "220000", "220700", "220100", "220581"
QIANAN, CHANGLING, NONGAN = "220723", "220722", "220122"
UNITS = [
    {"key": PROVINCE, "name": "吉林省", "bureau": "吉林省就业服务局", "level": "province"},
    {
        "key": SONGYUAN,
        "name": "松原市",
        "bureau": "松原市人力资源和社会保障局",
        "level": "city",
        "reports_to": PROVINCE,
        "contacts": [{"name": "李局长", "role": "主要领导"}, {"name": "赵科长", "role": "经办人"}],
    },
    {
        "key": QIANAN,
        "name": "乾安县",
        "bureau": "乾安县人力资源和社会保障局",
        "level": "county",
        "reports_to": SONGYUAN,
    },
    {
        "key": CHANGLING,
        "name": "长岭县",
        "bureau": "长岭县人力资源和社会保障局",
        "level": "county",
        "reports_to": SONGYUAN,
    },
    {
        "key": CHANGCHUN,
        "name": "长春市",
        "bureau": "长春市人力资源和社会保障局",
        "level": "city",
        "reports_to": PROVINCE,
    },
    {
        "key": NONGAN,
        "name": "农安县",
        "bureau": "农安县人力资源和社会保障局",
        "level": "county",
        "reports_to": CHANGCHUN,
    },
    {
        "key": MEIHEKOU,
        "name": "梅河口市",
        "bureau": "梅河口市人力资源和社会保障局",
        "level": "city",
        "reports_to": PROVINCE,
        "contacts": [{"name": "孙市长", "role": "主要领导"}],
    },
]


def use_small_hierarchy(config_dir: Path) -> None:
    """Replace the config copy's regions with the fixture hierarchy, and the campaign's references to it."""
    edit_yaml(config_dir / "regions.yaml", lambda data: data.update(units=UNITS))

    def change(data: dict[str, Any]) -> None:
        data["quotas"].update(
            total=6, by_city={SONGYUAN: 3, CHANGCHUN: 2, MEIHEKOU: 1}, by_level={"city": 2, "county": 4}
        )
        data["pool"]["key_counties"] = []

    edit_yaml(config_dir / "campaigns" / "2022.yaml", change)


def approve_recommendations(config_dir: Path, inbox: Path, on: dt.date) -> dict[str, int]:
    """Two 乾安县 projects recommended to 松原市 and one 梅河口市 project to the province, approved on `on`.

    Returns project name -> application id.
    """
    from config import load_config
    from models.clock import moment
    from tasks.pool import decide_recommendations, propose_recommendations, take_in_workbook

    recommend_on_admission(config_dir)  # the shortest way to approved recommendations; the review's
    cfg = load_config()  # naming makes the same rows (tests/test_review.py)
    received = moment(on, cfg.campaign)
    take_in_workbook(
        cfg, write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(1), application(2)]), received
    )
    meihekou = application(
        3,
        项目名称="人参种植项目3",
        统一社会信用代码=credit_code(3, MEIHEKOU),
        **{"所在县（市、区）": "梅河口市", "申报层级": "市级"},
    )
    take_in_workbook(cfg, write_xlsx(inbox / "梅河口市-培育库申报表.xlsx", [meihekou]), received)
    waiting = propose_recommendations.fn(cfg, on, received)
    assert sorted(w["route"] for w in waiting) == ["乾安县 → 松原市", "乾安县 → 松原市", "梅河口市 → 吉林省"]
    decide_recommendations(
        cfg,
        [(w["id"], True, "") for w in waiting],
        decided_by="省局经办人",
        decided_at=received,
        flow_run_id=None,
    )
    from sqlmodel import select

    from models.db import session_scope
    from models.tables import PoolApplication

    with session_scope() as session:
        return {a.project_name: a.id for a in session.exec(select(PoolApplication)).all()}  # type: ignore[misc]


VISIT_HEADERS = [
    "项目名称",
    "统一社会信用代码",
    "走访日期",
    "走访领导",
    "领导职务",
    "走访单位",
    "走访情况",
    "需求类别",
    "需求描述",
    "已提供服务",
]
TRAINING_HEADERS = ["举办单位", "培训类别", "培训日期", "培训主题", "参训人数", "关联项目", "备注"]
FUND_HEADERS = [
    "单位",
    "资金来源",
    "资金年度",
    "资金文号",
    "用途",
    "下达金额（万元）",
    "下达日期",
    "到位金额（万元）",
    "到位日期",
    "支出金额（万元）",
    "支出日期",
    "备注",
]


def visit(project: int, on: str, **overrides: Any) -> dict[str, Any]:
    row = {
        "项目名称": f"肉牛养殖项目{project}",
        "统一社会信用代码": credit_code(project),
        "走访日期": on,
        "走访领导": "王县长",
        "领导职务": "副县长",
        "走访情况": "生产正常，计划扩栏",
        "需求类别": "销售渠道、品牌打造",
        "需求描述": "希望对接电商平台",
        "已提供服务": "对接县电商中心",
    }
    row.update(overrides)
    return row


def training(unit: str, kind: str, on: str, topic: str, **overrides: Any) -> dict[str, Any]:
    row = {"举办单位": unit, "培训类别": kind, "培训日期": on, "培训主题": topic, "参训人数": "35"}
    row.update(overrides)
    return row


def fund(unit: str, doc: str, purpose: str, **amounts: Any) -> dict[str, Any]:
    row = {"单位": unit, "资金来源": "省级专项资金", "资金年度": "2022", "资金文号": doc, "用途": purpose}
    row.update(amounts)
    return row


def write_sheet(path: Path, headers: list[str], rows: list[dict[str, Any]]) -> Path:
    return write_xlsx(path, rows, headers)
