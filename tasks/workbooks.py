"""Workbooks the product hands to bureaus: a sheet's blank template, and the error workbook that sends
bad rows back. Both are written with openpyxl; headers come from the sheet's declaration (models/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from models.messages import clip
from models.privacy import mask_personal_data
from models.sheets import ERROR_COLUMN, FALSE_WORDS, TRUE_WORDS, Sheet
from models.workbook import ROW
from tasks.files import write_atomically

BOLD = Font(bold=True)
REQUIRED = PatternFill("solid", fgColor="FFF2CC")
ERROR = PatternFill("solid", fgColor="FDE9E7")
TEMPLATE_ROWS = 2000  # rows the drop-down lists cover


# A cell that starts like this is a formula (or, in a CSV, may become one) when a person opens the
# file: what we write back is always text (OWASP, CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def private_folder(folder: Path) -> Path:
    """A folder only the service's account can enter (archived originals hold full ID numbers)."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)
    return folder


def _save(book: Workbook, path: Path) -> Path:
    """Every workbook we write goes through here: no cell is a formula, only the service reads it."""
    if not book.write_only:  # write-only sheets were made safe cell by cell (`_text`)
        for sheet in book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type == "f":
                        cell.data_type = "s"
    private_folder(path.parent)
    return write_atomically(path, book.save)  # a reader never sees half a workbook


def _text(sheet: object, value: object, echo_chars: int | None = None) -> object:
    """A value for a write-only sheet, never a formula; a value quoted back (`echo_chars` given) has
    its ID-card and phone numbers masked and is cut to `echo_chars`."""
    if not isinstance(value, str):
        return value
    if echo_chars is not None:
        value = clip(mask_personal_data(value), echo_chars)
    if value.startswith(FORMULA_START):
        cell = WriteOnlyCell(sheet, value=value)  # type: ignore[arg-type]
        cell.data_type = "s"
        return cell
    return value


def write_template(
    path: Path, spec: Sheet, year: int, appendix: tuple[str, list[tuple[str, str]]] | None = None
) -> Path:
    """A sheet's blank template: a header row, drop-down lists, text-formatted ID columns, instructions.

    `appendix` is a titled list of (label, text) lines for the instructions sheet (e.g. the year's bars).
    """
    book = Workbook()
    sheet = book.active
    sheet.title = spec.title
    sheet.append([c.header for c in spec.columns])
    for i, column in enumerate(spec.columns, start=1):
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
        if column.kind in ("uscc", "ric", "phone", "region", "unit"):
            # Text, so Excel keeps all 18 characters and leading zeros instead of a rounded number.
            for row in range(2, TEMPLATE_ROWS + 2):
                sheet.cell(row, i).number_format = "@"
        if column.kind == "date":
            for row in range(2, TEMPLATE_ROWS + 2):
                sheet.cell(row, i).number_format = "yyyy-mm-dd"
    sheet.freeze_panes = "B2"
    sheet.row_dimensions[1].height = 36

    notes = book.create_sheet("填报说明")
    notes.append([f"{year} 年{spec.title} 填报说明"])
    notes["A1"].font = Font(bold=True, size=14)
    notes.append([])
    lines = (
        f"请在“{spec.title}”工作表第 2 行起逐行填写，一行一条记录；不要改动表头。黄色表头为必填列。",
        "填好后在本单位办理页面（通知中的链接）对应事项下上传，文件名不限；"
        f"通过邮件等其他方式报送时，文件名须以本单位名称或行政区划代码开头，如“{spec.example_file}”。"
        "也可另存为 CSV（UTF-8 或 GBK 均可）。",
        "有误的行会随处理结果退回（错误清单：原列 + 错误说明），其余各行照常受理。",
        *spec.instructions,
        "是/否列可填：" + "、".join(sorted(w for w in TRUE_WORDS | FALSE_WORDS if w)) + "；留空视为“否”。",
    )
    for number, line in enumerate(lines, start=1):
        notes.append([f"{number}. {line}"])
    notes.append([])
    notes.append(["列名", "必填", "填写要求"])
    for cell in notes[notes.max_row]:
        cell.font = BOLD
    for column in spec.columns:
        rule = column.hint or ("可选：" + "、".join(column.choices) if column.choices else "")
        notes.append([column.header, "是" if column.required else "", rule])
    if appendix is not None:
        title, rows = appendix
        notes.append([])
        notes.append([title])
        notes[notes.max_row][0].font = BOLD
        for label, text in rows:
            notes.append([label, "", text])
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["C"].width = 90
    return _save(book, path)


def write_error_workbook(
    path: Path, spec: Sheet, bad: pd.DataFrame, errors: pd.DataFrame, echo_chars: int = 200
) -> Path:
    """The bad rows as sent (personal data masked) with an error column, and one line per error.

    Written in openpyxl's streaming mode: a file with many bad rows is sent back as fast as it came.
    What the sender wrote comes back as text cut to `echo_chars`, never as a live formula.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet("有误的行")
    headers = ["原行号", *(c.header for c in spec.columns), ERROR_COLUMN]
    sheet.column_dimensions["A"].width = 8
    sheet.column_dimensions[get_column_letter(len(headers))].width = 60
    sheet.freeze_panes = "B2"
    sheet.append([_cell(sheet, h, font=BOLD) for h in headers])
    fields = [c.field for c in spec.columns]
    ordered = bad.sort_values(ROW)
    for number, *values, explained in zip(
        ordered[ROW].tolist(),
        *(ordered[f].tolist() for f in fields),
        ordered[ERROR_COLUMN].tolist(),
        strict=True,
    ):
        sheet.append(
            [
                number,
                *(_text(sheet, v, echo_chars) for v in values),
                _cell(sheet, explained, fill=ERROR, wrap=True),
            ]
        )
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
        detail.append([_text(detail, v, echo_chars) for v in row])
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


HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_FONT = Font(bold=True, size=14)


def write_report(path: Path, title: str, sheets: list[tuple[str, pd.DataFrame]], note: str = "") -> Path:
    """A workbook a bureau circulates: one titled sheet per table, Chinese headers, frozen header row,
    widths fitted to the content, percentages and amounts formatted by their header."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, frame in sheets:
        sheet = book.create_sheet(name[:31])
        sheet.append([f"{title}：{name}"])
        sheet["A1"].font = TITLE_FONT
        sheet.append([note] if note else [])
        sheet.append([str(c) for c in frame.columns])
        for cell in sheet[3]:
            cell.font, cell.fill = BOLD, HEADER_FILL
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in frame.itertuples(index=False):
            sheet.append([None if pd.isna(v) else (v.item() if hasattr(v, "item") else v) for v in row])
        for j, column in enumerate(frame.columns, start=1):
            letter = get_column_letter(j)
            header = str(column)
            fmt = (
                "0.0%"
                if "率" in header and "（%）" not in header
                else ("#,##0.00" if "分" in header or "万元" in header else None)
            )
            if fmt:
                for cell in sheet[letter][3:]:
                    cell.number_format = fmt
            widest = max([len(header)] + [len(str(v)) for v in frame[column].head(200)])
            sheet.column_dimensions[letter].width = min(40, max(8, widest * 2 + 2))
        sheet.freeze_panes = "B4"
    return _save(book, path)
