"""Generated incubation-pool applications: valid identifiers made with python-stdnum, files written as
Chinese Excel writes them (XLSX, CSV in GBK or UTF-8 with BOM). Shared by the tests and the benchmark."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from stdnum.cn import ric, uscc

from models.applications import COLUMNS

HEADERS = [c.header for c in COLUMNS]


def credit_code(n: int, region: str = "220723") -> str:
    body = f"93{region}MA{n:08d}"[:17]  # 93: a farmers' cooperative
    return body + uscc.calc_check_digit(body)


def id_number(n: int, region: str = "220723") -> str:
    body = f"{region}1985{1 + n % 12:02d}{1 + n % 28:02d}{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def application(n: int, **overrides: Any) -> dict[str, Any]:
    """A valid application (it meets the county, city and province bars of 2022) as header → value."""
    row = {
        "项目名称": f"肉牛养殖项目{n}",
        "申报主体名称": f"乾安县兴农合作社{n}",
        "统一社会信用代码": credit_code(n),
        "主体类型": "农民专业合作社",
        "负责人姓名": "王某",
        "负责人身份证号": id_number(n),
        "负责人类别": "农民工",
        "联系电话": f"139{n % 100000000:08d}",
        "所在县（市、区）": "乾安县",
        "乡镇": "安字镇",
        "村": "西村",
        "产业类别": "畜牧养殖",
        "是否肉牛养殖": "是",
        "成立日期": "2018-03-01",
        "经营场所面积（平方米）": "800",
        "种植面积（亩）": "0",
        "带动创业人数": "40",
        "吸纳就业人数": "60",
        "其中脱贫人口就业人数": "8",
        "员工人均年工资（元）": "36000",
        "是否就业帮扶车间": "否",
        "是否边境村": "否",
        "是否空心村": "否",
        "特色类型": "一村一品",
        "是否获疫情防控或保耕复产表彰": "否",
        "三个助力方向": "乡村振兴",
        "发展阶段": "无",
        "是否示范性、代表性农业或涉农项目": "否",
        "申报层级": "县级",
    }
    row.update(overrides)
    return row


def write_xlsx(path: Path, rows: Iterable[dict[str, Any]], headers: list[str] = HEADERS) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("申报表")
    sheet.append(headers)
    for row in rows:
        sheet.append([row.get(h, "") for h in headers])
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def write_csv(
    path: Path, rows: Iterable[dict[str, Any]], encoding: str = "gbk", headers: list[str] = HEADERS
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        for row in rows:
            writer.writerow([row.get(h, "") for h in headers])
    return path
