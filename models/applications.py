"""The incubation-pool application sheet (培育库申报表): its columns, and the check of each row.

Pure and vectorised: a chunk of text columns from models/workbook.py goes in; typed good rows, the
errors (row, column, value, reason — in the words the sending bureau reads) and warnings come out.
Personal data (ID numbers, phone numbers) is masked in every value an error or warning shows.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from models.privacy import mask_phone, mask_ric
from models.workbook import ROW, fold

Kind = Literal["text", "uscc", "ric", "phone", "region", "enum", "multi", "bool", "date", "number", "count"]

ENTITY_TYPES = ("企业", "农民专业合作社", "家庭农场", "其他")
LEADER_CATEGORIES = ("农民工", "大学生", "退役军人", "其他")
SPECIALITIES = ("一县一业", "一乡一特", "一村一品", "无")
DIRECTIONS = ("乡村振兴", "党委政府重点工作", "区域品牌特色")
DECLARED_LEVELS = ("县级", "市级", "省级")


@dataclass(frozen=True)
class Column:
    header: str  # as in the published template
    field: str
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""  # the template's instructions sheet shows it


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
    Column("经营场所面积（平方米）", "premises_m2", "number"),
    Column("种植面积（亩）", "planted_mu", "number"),
    Column("带动创业人数", "entrepreneurs_driven", "count", True),
    Column("吸纳就业人数", "jobs", "count", True),
    Column("其中脱贫人口就业人数", "poverty_jobs", "count"),
    Column("员工人均年工资（元）", "avg_wage_yuan", "number", True),
    Column("是否就业帮扶车间", "assistance_workshop", "bool"),
    Column("是否边境村", "border_village", "bool"),
    Column("是否空心村", "hollow_village", "bool"),
    Column("特色类型", "speciality", "enum", False, SPECIALITIES),
    Column("是否获疫情防控或保耕复产表彰", "commended", "bool"),
    Column("三个助力方向", "directions", "multi", False, DIRECTIONS, hint="可多选，以“、”或“,”分隔"),
    Column("申报层级", "declared_level", "enum", True, DECLARED_LEVELS),
)
BY_FIELD = {c.field: c for c in COLUMNS}
EXPECTED_HEADERS = {fold(c.header): c.field for c in COLUMNS}
ERROR_COLUMN = "错误说明"

TRUE_WORDS = frozenset({"是", "Y", "YES", "1", "TRUE", "√", "有"})
FALSE_WORDS = frozenset({"否", "N", "NO", "0", "FALSE", "×", "无", ""})
MULTI_SEPARATORS = r"[、,，;；/\s]+"
# Sanity limits: values beyond them are typing mistakes, not policy.
LIMITS = {
    "premises_m2": 10_000_000,
    "planted_mu": 10_000_000,
    "avg_wage_yuan": 2_000_000,
    "entrepreneurs_driven": 100_000,
    "jobs": 100_000,
}
EARLIEST_FOUNDING = dt.date(1949, 10, 1)
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")


@dataclass(frozen=True)
class RegionIndex:
    """What may be written in 所在县（市、区）: a leaf unit's code, former code, name or bureau name."""

    lookup: dict[str, str]  # folded text -> unit key
    former: dict[str, str]  # former code -> current key
    names: dict[str, str]  # unit key -> name


@dataclass(frozen=True)
class CheckContext:
    regions: RegionIndex
    allowed_regions: frozenset[str]  # the sender's jurisdiction
    sender_name: str
    application_date: dt.date


@dataclass
class Checked:
    good: pd.DataFrame  # typed columns and _row
    errors: pd.DataFrame  # _row, 列, 值, 原因
    warnings: pd.DataFrame  # same shape
    bad: pd.DataFrame = field(default_factory=pd.DataFrame)  # the bad rows' text, masked, + 错误说明
    repeats: int = 0  # rows left out because a later row is the same application


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


def check_applications(chunk: pd.DataFrame, ctx: CheckContext) -> Checked:
    """Type and check every row of a chunk; a row with any error is left out of `good`."""
    errors: list[pd.DataFrame] = []
    warnings: list[pd.DataFrame] = []
    out = pd.DataFrame({ROW: chunk[ROW].to_numpy()}, index=chunk.index)
    missing_columns = [c for c in COLUMNS if c.field not in chunk.columns]
    text = chunk.copy()
    for c in missing_columns:  # an optional column left out of the sheet reads as blank
        text[c.field] = ""

    def error(mask: pd.Series, column: Column, reason: pd.Series | str) -> None:
        if mask.any():
            values = _mask_values(column, text.loc[mask, column.field])
            errors.append(
                _issues(
                    text.loc[mask, ROW],
                    column.header,
                    values,
                    reason if isinstance(reason, str) else reason[mask],
                )
            )

    for column in COLUMNS:
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
            value = nfkc(raw).str.replace(r"[\s()（）]", "", regex=True)
            value = value.str.replace(r"^(\+?86-?)(?=1)", "", regex=True)
            mobile = value.str.fullmatch(MOBILE.pattern)
            landline = value.str.fullmatch(LANDLINE.pattern)
            error(present & ~(mobile | landline), column, "不是有效的手机号（11 位）或带区号的固定电话")
            out[column.field] = value
        elif kind == "region":
            folded = raw.map(fold)
            key = folded.map(ctx.regions.lookup)
            former = folded.map(ctx.regions.former)
            key = key.fillna(former)
            error(present & key.isna(), column, "未知的县级单位或行政区划代码")
            moved = present & former.notna()
            if moved.any():
                warnings.append(
                    _issues(
                        text.loc[moved, ROW],
                        column.header,
                        raw[moved],
                        "旧行政区划代码，已按现行代码 "
                        + former[moved]
                        + "（"
                        + former[moved].map(ctx.regions.names)
                        + "）受理",
                    )
                )
            outside = present & key.notna() & ~key.isin(ctx.allowed_regions)
            error(outside, column, f"不属于{ctx.sender_name}辖区，请由所在地人社部门报送")
            out[column.field] = key.fillna("")
        elif kind == "enum":
            value = nfkc(raw)
            if column.field == "speciality":
                value = value.where(present, "无")
            allowed = "、".join(column.choices)
            error(present & ~value.isin(column.choices), column, f"应为以下之一：{allowed}")
            out[column.field] = value
        elif kind == "multi":
            parts = nfkc(raw).str.split(MULTI_SEPARATORS, regex=True)
            exploded = parts.explode()
            exploded = exploded[exploded.notna() & (exploded != "")]
            unknown = exploded[~exploded.isin(column.choices)]
            bad = pd.Series(False, index=text.index)
            bad[unknown.index.unique()] = True
            error(bad, column, f"应为以下一项或多项：{'、'.join(column.choices)}")
            # Canonical order and spelling, whatever the sender wrote: "乡村振兴、区域品牌特色".
            joined = pd.Series("", index=text.index)
            for choice in column.choices:
                named = (exploded == choice).groupby(level=0).any().reindex(text.index, fill_value=False)
                joined = joined.where(~named, joined + choice + "、")
            out[column.field] = joined.str.rstrip("、")
        elif kind == "bool":
            value = nfkc(raw).str.upper()
            yes, no = value.isin(TRUE_WORDS), value.isin(FALSE_WORDS)
            error(~(yes | no), column, "应填“是”或“否”")
            out[column.field] = yes
        elif kind == "date":
            value = parse_dates(raw)
            error(
                present & value.isna(), column, "无法识别的日期（示例：2020-05-31、2020/5/31、2020年5月31日）"
            )
            day = value.dt.date
            later = present & value.notna() & (value > pd.Timestamp(ctx.application_date))
            error(later, column, f"晚于申报日期 {ctx.application_date.isoformat()}")
            early = present & value.notna() & (value < pd.Timestamp(EARLIEST_FOUNDING))
            error(early, column, "日期不合理（早于 1949 年）")
            out[column.field] = day
        else:  # number, count
            cleaned = nfkc(raw).str.replace(r"[,\s]", "", regex=True)
            value = pd.to_numeric(cleaned.where(present), errors="coerce")
            error(present & value.isna(), column, "不是数字")
            error(value < 0, column, "不能为负数")
            if kind == "count":
                error(value.notna() & (value % 1 != 0), column, "人数应为整数")
            limit = LIMITS.get(column.field)
            if limit is not None:
                error(value > limit, column, f"数值不合理（超过 {limit:,}）")
            out[column.field] = value.fillna(0)

    over = out["poverty_jobs"] > out["jobs"]
    error(over, BY_FIELD["poverty_jobs"], "大于吸纳就业人数")

    issues = pd.concat(errors, ignore_index=True) if errors else pd.DataFrame(columns=ISSUE_COLUMNS)
    bad_rows = set(issues[ROW].tolist())
    is_bad = out[ROW].isin(bad_rows)
    good = out[~is_bad].copy()

    # The same application twice in one file: the later row wins, the earlier is reported.
    dup = good.duplicated(["credit_code", "project_name"], keep="last")
    if dup.any():
        later = good.groupby(["credit_code", "project_name"])[ROW].transform("max")
        warnings.append(
            _issues(
                good.loc[dup, ROW],
                "项目名称",
                good.loc[dup, "project_name"],
                "与第 " + later[dup].astype(str) + " 行为同一申报（信用代码与项目名称相同），以后者为准",
            )
        )
        good = good[~dup]
    for col in ("entrepreneurs_driven", "jobs", "poverty_jobs"):
        good[col] = good[col].astype(np.int64)

    bad = text.loc[is_bad.to_numpy(), [c.field for c in COLUMNS] + [ROW]].copy()
    if not bad.empty:
        bad["leader_id"] = bad["leader_id"].map(mask_ric)
        bad["phone"] = bad["phone"].map(mask_phone)
        explained = (
            issues.assign(text=issues["列"] + "：" + issues["原因"]).groupby(ROW)["text"].agg("；".join)
        )
        bad[ERROR_COLUMN] = bad[ROW].map(explained)
    warn = pd.concat(warnings, ignore_index=True) if warnings else pd.DataFrame(columns=ISSUE_COLUMNS)
    warn = warn[~warn[ROW].isin(bad_rows)]  # a refused row's errors say all there is to say
    return Checked(good=good, errors=issues, warnings=warn, bad=bad, repeats=int(dup.sum()))
