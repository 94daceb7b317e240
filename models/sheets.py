"""Checking a submitted sheet, whatever it records: the one way rows of a workbook become typed rows.

A `Sheet` declares its columns (header, field, kind, required, choices), what identifies one record,
and any rule across columns. `check_sheet` types and checks a chunk of text columns from
models/workbook.py, vectorised: typed good rows come out, and the errors and warnings (row, column,
value, reason — in the words the sending bureau reads). Personal data (ID numbers, phone numbers) is
masked in every value an error or warning shows, and in the bad rows sent back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import numpy as np
import pandas as pd
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from models.privacy import mask_phone, mask_ric
from models.workbook import ROW, fold

Kind = Literal[
    "text", "uscc", "ric", "phone", "region", "unit", "enum", "multi", "bool", "date", "number", "count"
]


@dataclass(frozen=True)
class Column:
    header: str  # as in the published template
    field: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""  # the template's instructions sheet shows it
    default: str = ""  # what a blank optional choice means (e.g. 特色类型: 无)
    limit: float | None = None  # sanity limit: a larger number is a typing mistake, not policy


ERROR_COLUMN = "错误说明"

TRUE_WORDS = frozenset({"是", "Y", "YES", "1", "TRUE", "√", "有"})
FALSE_WORDS = frozenset({"否", "N", "NO", "0", "FALSE", "×", "无", ""})
MULTI_SEPARATORS = r"[、,，;；/\s]+"
_MULTI_SPLIT = re.compile(MULTI_SEPARATORS)
EARLIEST_FOUNDING = dt.date(1949, 10, 1)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


@dataclass(frozen=True)
class RegionIndex:
    """What may be written where a sheet names a unit: its code, former code, name or bureau name."""

    lookup: dict[str, str]  # folded text -> unit key
    former: dict[str, str]  # former code -> current key
    names: dict[str, str]  # unit key -> name


@dataclass(frozen=True)
class CheckContext:
    regions: RegionIndex  # for `region` columns: the county-level units
    allowed_regions: frozenset[str]  # the sender's jurisdiction
    sender_name: str
    application_date: dt.date  # the day the sheet was received: no date in it may be later
    units: RegionIndex | None = None  # for `unit` columns: cities and counties alike
    sender_key: str = ""  # an optional `unit` column left blank means the sender
    earliest: dt.date = EARLIEST_FOUNDING  # no date in the sheet may be earlier
    # (credit code, project name) -> pool application id, for sheets that name pool projects
    projects: Mapping[tuple[str, str], int] = field(default_factory=dict)
    entities: Mapping[int, str] = field(default_factory=dict)  # application id -> applicant's name
    # application id -> "" if the project meets the bar of the pool above the sender, what falls short
    # otherwise, None where there is no pool above (a naming list's 应推尽推 check)
    upper_bar: Mapping[int, str | None] = field(default_factory=dict)
    upper_name: str = ""  # the unit above the sender
    named_before: Mapping[int, str] = field(default_factory=dict)  # application id -> an earlier naming


@dataclass
class Checked:
    good: pd.DataFrame  # typed columns and _row
    errors: pd.DataFrame  # _row, 列, 值, 原因
    warnings: pd.DataFrame  # same shape
    bad: pd.DataFrame = field(default_factory=pd.DataFrame)  # the bad rows' text, masked, + 错误说明
    repeats: int = 0  # rows left out because a later row is the same record


ISSUE_COLUMNS = [ROW, "列", "值", "原因"]


def _issues(rows: pd.Series, column: str, values: pd.Series, reason: pd.Series | str) -> pd.DataFrame:
    frame = pd.DataFrame({ROW: rows.to_numpy(), "列": column, "值": values.to_numpy()})
    frame["原因"] = reason if isinstance(reason, str) else reason.to_numpy()
    return frame


def _mask_values(column: Column, values: pd.Series) -> pd.Series:
    if column.kind == "ric":
        return values.map(mask_ric)
    if column.kind == "phone":
        return values.map(mask_phone)
    return values


def validate_ric(number: str) -> str:
    """python-stdnum's ID check without its birthplace lookup.

    stdnum 2.2's place table lacks 33 of Jilin's 70 current codes (乾安县 220723, 公主岭市 220184,
    松原市's whole district …), and a number keeps the code of the place it was first issued in, so a
    place check would refuse real residents. Length, characters, check character and birth date stay.
    """
    number = ric.compact(number)
    if len(number) != 18:
        raise InvalidLength()
    if not number[:-1].isdigit():
        raise InvalidFormat()
    if number[-1] != ric.calc_check_digit(number):
        raise InvalidChecksum()
    born = ric.get_birth_date(number)
    if not dt.date(1900, 1, 1) <= born <= dt.date.today():
        raise InvalidComponent()
    return number


# Whole-column mirrors of python-stdnum's checks, for speed (a call per row costs ~40 µs in stdnum's
# generic clean-up; 100,000 rows would spend seconds there). stdnum stays the reference: every row
# that fails here is re-checked by stdnum for its reason, and tests/test_pool_rules.py asserts both
# agree on thousands of numbers, valid and corrupted.
_USCC_ALPHABET = uscc._alphabet  # "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
_USCC_INDEX = np.full(256, -1, dtype=np.int64)
_USCC_INDEX[np.frombuffer(_USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(len(_USCC_ALPHABET))
_RIC_WEIGHTS = np.array([pow(13, 16 - i, 11) for i in range(17)])


def _digits(values: pd.Series, pattern: str) -> tuple[pd.Series, np.ndarray]:
    """Rows matching `pattern` (18 ASCII characters), and their bytes as an (n, 18) array."""
    ok = values.str.fullmatch(pattern).fillna(False).astype(bool)
    joined = "".join(values[ok].tolist()).encode("ascii")
    return ok, np.frombuffer(joined, dtype=np.uint8).reshape(-1, 18)


def uscc_valid(values: pd.Series) -> pd.Series:
    """stdnum.cn.uscc.is_valid over a column of compacted, upper-case codes."""
    ok, chars = _digits(values, r"[0-9]{8}[0-9A-HJ-NPQRTUWXY]{10}")
    index = _USCC_INDEX[chars]
    check = (31 - (index[:, :17] @ _USCC_WEIGHTS) % 31) % 31
    result = pd.Series(False, index=values.index)
    result[ok] = check == index[:, 17]
    return result


def ric_valid(values: pd.Series) -> pd.Series:
    """`validate_ric` over a column of compacted, upper-case ID numbers."""
    ok, chars = _digits(values, r"[0-9]{17}[0-9X]")
    digits = chars[:, :17].astype(np.int64) - ord("0")
    checksum = (1 - 2 * (digits @ _RIC_WEIGHTS)) % 11
    expected = np.where(checksum == 10, ord("X"), checksum + ord("0"))
    born = pd.to_datetime(values[ok].str.slice(6, 14), format="%Y%m%d", errors="coerce")
    in_range = born.between(pd.Timestamp(1900, 1, 1), pd.Timestamp(dt.date.today())).to_numpy()
    result = pd.Series(False, index=values.index)
    result[ok] = (expected == chars[:, 17]) & in_range
    return result


def _stdnum_reason(validate: object, value: str, what: str) -> str:
    try:
        validate(value)  # type: ignore[operator]
    except InvalidLength:
        return f"{what}位数不对（应为 18 位，实为 {len(value)} 位）"
    except InvalidChecksum:
        return f"{what}校验位不正确（请核对是否有错字，或被 Excel 存为数字而丢失末几位）"
    except InvalidComponent:
        return f"{what}中的出生日期不正确"
    except InvalidFormat:
        return f"{what}含有不允许的字符"
    except Exception:
        return f"{what}无效"
    return f"{what}无效"


def _all_ascii(values: pd.Series) -> bool:
    return "".join(values.tolist()).isascii()  # one C-level pass, instead of one call per cell


def _canonical_multi(choices: Sequence[str], cell: str) -> str | None:
    parts = {part for part in _MULTI_SPLIT.split(cell) if part}
    if not parts <= set(choices):
        return None
    return "、".join(choice for choice in choices if choice in parts)


def by_distinct(values: pd.Series, convert: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`convert` applied once per distinct value and spread back over the rows.

    Pandas' string methods run a Python call per cell; enums, counts and dates repeat a lot, so a
    100,000-row column of them has a few hundred distinct values to convert instead."""
    codes, uniques = pd.factorize(values)
    if len(uniques) * 2 > len(values) or (codes < 0).any():
        return convert(values)
    converted = convert(pd.Series(uniques, dtype=values.dtype))
    return pd.Series(converted.to_numpy()[codes], index=values.index, dtype=converted.dtype)


def nfkc(values: pd.Series) -> pd.Series:
    """Full-width to half-width (NFKC); columns of plain ASCII, the usual case, are left as they are."""
    return values if _all_ascii(values) else values.str.normalize("NFKC")


def parse_dates(text: pd.Series) -> pd.Series:
    """Excel serials, 2022-05-31, 2022/5/31, 2022.5.31, 20220531 and 2022年5月31日 → datetime64 (NaT if none)."""
    # The common spellings first, in C; the regular expressions only see what is left.
    parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[s]")
    for fmt in ("%Y-%m-%d", "%Y/%m/%d"):
        left = parsed.isna()
        if not left.any():
            return parsed
        parsed[left] = pd.to_datetime(text[left], format=fmt, errors="coerce").astype("datetime64[s]")
    left = parsed.isna() & (text != "")
    if not left.any():
        return parsed
    text = text[left]
    folded = nfkc(text).str.replace(r"[ T]\d{1,2}:\d{2}(:\d{2})?(\.\d+)?$", "", regex=True)
    parts = folded.str.extract(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
    compact = folded.str.extract(r"^(\d{4})(\d{2})(\d{2})$")
    parts = parts.fillna(compact)
    rest = pd.to_datetime({"year": parts[0], "month": parts[1], "day": parts[2]}, errors="coerce").astype(
        "datetime64[s]"
    )
    serial = pd.to_numeric(folded.where(folded.str.fullmatch(r"\d{5}(\.\d+)?")), errors="coerce")
    from_serial = (
        pd.Timestamp("1899-12-30") + pd.to_timedelta(serial.fillna(0).astype(int), unit="D")
    ).where(serial.notna())
    parsed[left] = rest.fillna(from_serial.astype("datetime64[s]"))
    return parsed


ErrorFn = Callable[[pd.Series, Column, "pd.Series | str"], None]
Rule = Callable[[pd.DataFrame, CheckContext, ErrorFn, ErrorFn], None]  # (typed rows, ctx, error, warn)


@dataclass(frozen=True)
class Sheet:
    """A kind of submitted workbook: its columns, and what makes two rows the same record."""

    title: str  # "培育库申报表", "走访记录表" — the template's and the messages' name for it
    columns: tuple[Column, ...]
    identity: tuple[str, ...]  # fields identifying one record, in a file and across resubmissions
    example_file: str  # "乾安县-培育库申报表.xlsx"
    date_label: str = "报送日期"  # "晚于<date_label> …"
    rules: tuple[Rule, ...] = ()  # checks across columns, after each column is typed
    instructions: tuple[str, ...] = ()  # extra lines for the template's instructions sheet

    @property
    def by_field(self) -> dict[str, Column]:
        return {c.field: c for c in self.columns}

    @property
    def expected_headers(self) -> dict[str, str]:
        return {fold(c.header): c.field for c in self.columns}

    def headers_with(self, aliases: Mapping[str, Iterable[str]]) -> dict[str, str]:
        """`expected_headers` plus other names for some columns (another system's export). Raises
        KeyError naming an alias's header that is not one of this sheet's."""
        by_header = {c.header: c.field for c in self.columns}
        out = dict(self.expected_headers)
        for header, names in aliases.items():
            if header not in by_header:
                raise KeyError(header)
            out |= {fold(name): by_header[header] for name in names}
        return out

    def with_codes(self, chunk: pd.DataFrame, codes: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
        """`chunk` (raw text by field) with another system's codes turned into this sheet's values;
        a value that is no code is left as it is, for the usual checks to judge."""
        by_header = {c.header: c.field for c in self.columns}
        for header, mapping in codes.items():
            field = by_header.get(header)
            if field is None:
                raise KeyError(header)
            if field in chunk.columns:
                chunk[field] = chunk[field].replace(dict(mapping))
        return chunk

    def missing_required(self, present: Iterable[str]) -> list[str]:
        have = set(present)
        return [c.header for c in self.columns if c.required and c.field not in have]


def _unit_column(
    raw: pd.Series,
    present: pd.Series,
    index: RegionIndex,
    column: Column,
    ctx: CheckContext,
    error: ErrorFn,
    warn: ErrorFn,
) -> pd.Series:
    folded = raw.map(fold)
    key = folded.map(index.lookup)
    former = folded.map(index.former)
    key = key.fillna(former)
    what = "县级单位" if column.kind == "region" else "单位"
    error(present & key.isna(), column, f"未知的{what}或行政区划代码")
    moved = present & former.notna()
    if moved.any():
        warn(
            moved,
            column,
            "旧行政区划代码，已按现行代码 "
            + former.fillna("")
            + "（"
            + former.map(index.names).fillna("")
            + "）受理",
        )
    outside = present & key.notna() & ~key.isin(ctx.allowed_regions)
    error(outside, column, f"不属于{ctx.sender_name}辖区，请由所在地人社部门报送")
    if column.kind == "unit" and not column.required:
        key = key.where(present, ctx.sender_key)
    return key.fillna("")


def check_sheet(chunk: pd.DataFrame, sheet: Sheet, ctx: CheckContext) -> Checked:
    """Type and check every row of a chunk; a row with any error is left out of `good`."""
    errors: list[pd.DataFrame] = []
    warnings: list[pd.DataFrame] = []
    out = pd.DataFrame({ROW: chunk[ROW].to_numpy()}, index=chunk.index)
    text = chunk.copy()
    for c in sheet.columns:  # an optional column left out of the sheet reads as blank
        if c.field not in text.columns:
            text[c.field] = ""

    def issue(sink: list[pd.DataFrame]) -> ErrorFn:
        def add(mask: pd.Series, column: Column, reason: pd.Series | str) -> None:
            if mask.any():
                values = _mask_values(column, text.loc[mask, column.field])
                sink.append(
                    _issues(
                        text.loc[mask, ROW],
                        column.header,
                        values,
                        reason if isinstance(reason, str) else reason[mask],
                    )
                )

        return add

    error, warn = issue(errors), issue(warnings)
    for column in sheet.columns:
        raw = text[column.field]
        blank = raw == ""
        if column.required:
            error(blank, column, "必填项为空")
        present = ~blank
        kind = column.kind
        if kind == "text":
            error(present & (raw.str.len() > 200), column, "超过 200 字")
            out[column.field] = raw
        elif kind in ("uscc", "ric"):
            value = nfkc(raw).str.replace(r"\s", "", regex=True).str.upper()
            is_valid, validate, what = (
                (uscc_valid, uscc.validate, "统一社会信用代码")
                if kind == "uscc"
                else (ric_valid, validate_ric, "身份证号")
            )
            valid = is_valid(value)
            bad = present & ~valid
            if bad.any():
                reasons = value[bad].map(lambda v, f=validate, w=what: _stdnum_reason(f, v, w))
                error(bad, column, reasons.reindex(text.index))
            out[column.field] = value
        elif kind == "phone":
            value = nfkc(raw)
            valid = value.str.fullmatch(MOBILE.pattern).astype(bool)  # most cells: a plain mobile number
            if not valid.all():  # the others cleaned (spaces, brackets, +86) and matched again
                messy = value[~valid].str.replace(r"[\s()（）]", "", regex=True)
                messy = messy.str.replace(r"^(\+?86-?)(?=1)", "", regex=True)
                value = value.where(valid, messy)
                cleaned = messy.str.fullmatch(MOBILE.pattern) | messy.str.fullmatch(LANDLINE.pattern)
                valid = valid | cleaned.reindex(valid.index, fill_value=False).astype(bool)
            error(present & ~valid, column, "不是有效的手机号（11 位）或带区号的固定电话")
            out[column.field] = value
        elif kind in ("region", "unit"):
            index = ctx.regions if kind == "region" else ctx.units
            if index is None:
                raise ValueError(f"{sheet.title}: a `unit` column needs CheckContext.units")
            out[column.field] = _unit_column(raw, present, index, column, ctx, error, warn)
        elif kind == "enum":
            value = by_distinct(raw, nfkc)
            if column.default:
                value = value.where(present, column.default)
            allowed = "、".join(column.choices)
            error(present & ~value.isin(column.choices), column, f"应为以下之一：{allowed}")
            out[column.field] = value
        elif kind == "multi":
            # each distinct cell once: its choices in canonical order and spelling ("乡村振兴、区域品牌特色"
            # whatever the sender wrote), or None when a part is not a choice
            canonical = by_distinct(
                raw, lambda v, c=column.choices: nfkc(v).map(partial(_canonical_multi, c))
            )
            error(canonical.isna(), column, f"应为以下一项或多项：{'、'.join(column.choices)}")
            out[column.field] = canonical.fillna("")
        elif kind == "bool":
            value = by_distinct(raw, lambda v: nfkc(v).str.upper())
            yes, no = value.isin(TRUE_WORDS), value.isin(FALSE_WORDS)
            error(~(yes | no), column, "应填“是”或“否”")
            out[column.field] = yes
        elif kind == "date":
            value = by_distinct(raw, parse_dates)
            error(
                present & value.isna(), column, "无法识别的日期（示例：2020-05-31、2020/5/31、2020年5月31日）"
            )
            later = present & value.notna() & (value > pd.Timestamp(ctx.application_date))
            error(later, column, f"晚于{sheet.date_label} {ctx.application_date.isoformat()}")
            early = present & value.notna() & (value < pd.Timestamp(ctx.earliest))
            error(early, column, f"日期不合理（早于 {ctx.earliest.year} 年）")
            out[column.field] = value.dt.date.where(value.notna(), None)
        else:  # number, count
            value = by_distinct(
                raw, lambda v: pd.to_numeric(nfkc(v).str.replace(r"[,\s]", "", regex=True), errors="coerce")
            ).where(present)
            error(present & value.isna(), column, "不是数字")
            error(value < 0, column, "不能为负数")
            if kind == "count":
                error(
                    value.notna() & (value % 1 != 0),
                    column,
                    "人数应为整数" if "人数" in column.header else "应为整数",
                )
            if column.limit is not None:
                error(value > column.limit, column, f"数值不合理（超过 {column.limit:,.0f}）")
            out[column.field] = value.fillna(0)

    for rule in sheet.rules:
        rule(out, ctx, error, warn)

    issues = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=ISSUE_COLUMNS)
    bad_rows = set(issues[ROW].tolist())
    is_bad = out[ROW].isin(bad_rows)
    good = out[~is_bad].copy()

    # The same record twice in one file: the later row wins, the earlier is reported.
    identity = list(sheet.identity)
    dup = good.duplicated(identity, keep="last")
    if dup.any():
        first = sheet.by_field[identity[0]]
        later = good.groupby(identity)[ROW].transform("max")
        names = "与".join(sheet.by_field[f].header for f in identity)
        warnings.append(
            _issues(
                good.loc[dup, ROW],
                first.header,
                _mask_values(first, good.loc[dup, first.field].astype(str)),
                "与第 " + later[dup].astype(str) + f" 行为同一记录（{names}相同），以后者为准",
            )
        )
        good = good[~dup]
    for column in sheet.columns:
        if column.kind == "count":
            good[column.field] = good[column.field].astype(np.int64)

    fields = [c.field for c in sheet.columns]
    bad = text.loc[is_bad.to_numpy(), [*fields, ROW]].copy()
    if not bad.empty:
        for column in sheet.columns:
            if column.kind in ("ric", "phone"):
                bad[column.field] = _mask_values(column, bad[column.field])
        explained = (
            issues.assign(text=issues["列"] + "：" + issues["原因"]).groupby(ROW)["text"].agg("；".join)
        )
        bad[ERROR_COLUMN] = bad[ROW].map(explained)
    warn_frame = pd.concat(warnings, ignore_index=True) if warnings else pd.DataFrame(columns=ISSUE_COLUMNS)
    warn_frame = warn_frame[~warn_frame[ROW].isin(bad_rows)]  # a refused row's errors say all there is
    return Checked(good=good, errors=issues, warnings=warn_frame, bad=bad, repeats=int(dup.sum()))
