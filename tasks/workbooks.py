"""Workbooks the product hands to bureaus: the blank application template, and the error workbook
that sends bad rows back. Both are written with openpyxl; headers come from models/applications.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from config.schema import PoolRules
from models.applications import COLUMNS, ERROR_COLUMN, FALSE_WORDS, TRUE_WORDS
from models.workbook import ROW

BOLD = Font(bold=True)
REQUIRED = PatternFill("solid", fgColor="FFF2CC")
ERROR = PatternFill("solid", fgColor="FDE9E7")
TEMPLATE_ROWS = 2000  # rows the drop-down lists cover


def _save(book: Workbook, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.xlsx")
    book.save(tmp)
    tmp.replace(path)  # a reader never sees half a workbook
    return path


def write_template(path: Path, year: int, rules: PoolRules | None = None) -> Path:
    """The blank 培育库申报表: a header row, drop-down lists, text-formatted ID columns, instructions."""
    book = Workbook()
    sheet = book.active
    sheet.title = "申报表"
    sheet.append([c.header for c in COLUMNS])
    for i, column in enumerate(COLUMNS, start=1):
        cell = sheet.cell(1, i)
        cell.font = BOLD
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        if column.required:
            cell.fill = REQUIRED
        letter = get_column_letter(i)
        sheet.column_dimensions[letter].width = max(10, min(30, len(column.header) * 2 + 2))
        cells = f"{letter}2:{letter}{TEMPLATE_ROWS + 1}"
        choices: tuple[str, ...] = ()
        if column.kind == "enum":
            choices = column.choices
        elif column.kind == "bool":
            choices = ("是", "否")
        if choices:
            rule = DataValidation(
                type="list",
                formula1='"' + ",".join(choices) + '"',
                allow_blank=not column.required,
                showErrorMessage=True,
                errorTitle="请从下拉列表选择",
                error=f"{column.header}应为：{'、'.join(choices)}",
            )
            rule.add(cells)
            sheet.add_data_validation(rule)
        if column.kind in ("uscc", "ric", "phone", "region"):
            # Text, so Excel keeps all 18 characters and leading zeros instead of a rounded number.
            for row in range(2, TEMPLATE_ROWS + 2):
                sheet.cell(row, i).number_format = "@"
        if column.kind == "date":
            for row in range(2, TEMPLATE_ROWS + 2):
                sheet.cell(row, i).number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "B2"
    sheet.row_dimensions[1].height = 36

    notes = book.create_sheet("填报说明")
    notes.append([f"{year} 年返乡入乡创业项目培育库申报表 填报说明"])
    notes["A1"].font = Font(bold=True, size=14)
    notes.append([])
    for line in (
        "1. 请在“申报表”工作表第 2 行起逐行填写，一行一个项目；不要改动表头。黄色表头为必填列。",
        "2. 文件名以本单位名称或行政区划代码开头，如“乾安县-培育库申报表.xlsx”，报送省就业服务局；也可另存为 CSV（UTF-8 或 GBK 均可）。",
        "3. 有误的行会随处理结果退回（错误清单：原列 + 错误说明），其余各行照常受理；更正后重报同一项目（统一社会信用代码与项目名称均不变）将更新原申报，不会重复入库。",
        "4. 身份证号、手机号仅用于核验，系统中只保存脱敏后的号码。",
        "5. 是/否列可填：" + "、".join(sorted(w for w in TRUE_WORDS | FALSE_WORDS if w)) + "；留空视为“否”。",
    ):
        notes.append([line])
    notes.append([])
    notes.append(["列名", "必填", "填写要求"])
    for cell in notes[notes.max_row]:
        cell.font = BOLD
    for column in COLUMNS:
        rule = column.hint or ("可选：" + "、".join(column.choices) if column.choices else "")
        notes.append([column.header, "是" if column.required else "", rule])
    if rules is not None:
        notes.append([])
        notes.append([f"{year} 年各级默认入库条件（各地已备案的本级标准优先）"])
        notes[notes.max_row][0].font = BOLD
        labels = {"county": "县级", "city": "市级", "province": "省级"}
        for level, bar in rules.admission.items():
            area = "、".join(
                part
                for part in (
                    f"经营场所≥{bar.min_premises_m2:g}平方米" if bar.min_premises_m2 is not None else "",
                    f"种植≥{bar.min_planted_mu:g}亩" if bar.min_planted_mu is not None else "",
                )
                if part
            )
            notes.append(
                [
                    labels[level.value],
                    "",
                    f"经营≥{bar.min_years_operating:g}年；{area or '面积不限'}（满足其一）；带动创业≥{bar.min_entrepreneurs_driven}人；"
                    f"吸纳就业≥{bar.min_jobs}人；人均年工资≥{bar.min_avg_wage_yuan:g}元",
                ]
            )
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["C"].width = 90
    return _save(book, path)


def write_error_workbook(path: Path, bad: pd.DataFrame, errors: pd.DataFrame) -> Path:
    """The bad rows as sent (personal data masked) with an error column, and one line per error.

    Written in openpyxl's streaming mode: a file with many bad rows is sent back as fast as it came.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet("有误的行")
    headers = ["原行号", *(c.header for c in COLUMNS), ERROR_COLUMN]
    sheet.column_dimensions["A"].width = 8
    sheet.column_dimensions[get_column_letter(len(headers))].width = 60
    sheet.freeze_panes = "B2"
    sheet.append([_cell(sheet, h, font=BOLD) for h in headers])
    fields = [c.field for c in COLUMNS]
    ordered = bad.sort_values(ROW)
    for number, *values, explained in zip(
        ordered[ROW].tolist(),
        *(ordered[f].tolist() for f in fields),
        ordered[ERROR_COLUMN].tolist(),
        strict=True,
    ):
        sheet.append([number, *values, _cell(sheet, explained, fill=ERROR, wrap=True)])
    detail = book.create_sheet("错误明细")
    detail.column_dimensions["D"].width = 60
    detail.append([_cell(detail, h, font=BOLD) for h in ("行号", "列", "值", "原因")])
    lines = errors.sort_values([ROW, "列"], kind="stable")
    for row in zip(
        lines[ROW].tolist(),
        lines["列"].tolist(),
        lines["值"].astype(str).tolist(),
        lines["原因"].tolist(),
        strict=True,
    ):
        detail.append(list(row))
    return _save(book, path)


def _cell(
    sheet: object,
    value: object,
    *,
    font: Font | None = None,
    fill: PatternFill | None = None,
    wrap: bool = False,
) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)  # type: ignore[arg-type]
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if wrap:
        cell.alignment = Alignment(wrap_text=True)
    return cell
