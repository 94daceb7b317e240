"""Every value in the campaign file that 吉人社发〔2022〕17号 does not give is declared (示意) for operators,
and the rules in models/ hold no policy number of their own.

The notice's numbers and dates are read from its text (tests/data/jilin-2022-base-campaign-notice.zh.txt,
public): Arabic numerals, percentages (100% is also the rate 1.0), Chinese numerals before a counter
(一次、三个、两级 …), dates written 2022年5月31日 and month ends written 6月底. A number or date of the
2022 file not among them must sit under an `illustrative_values` path (a path covers what is below it)
or in an engineering section listed here with the reason; a number found in both is not checked further
(the notice's 1, 2, 3, 100 are everywhere), so a section with any foreign number is declared whole.
"""

from __future__ import annotations

import ast
import calendar
import datetime as dt
import re
from pathlib import Path
from typing import Any

import yaml

from config.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
NOTICE = (Path(__file__).parent / "data" / "jilin-2022-base-campaign-notice.zh.txt").read_text(
    encoding="utf-8"
)

# Settings of the product, not of the campaign: no notice would give them.
ENGINEERING = {
    "delivery": "how messages are retried and given up (channels, timeouts, back-off)",
    "intake_limits": "what a submitted file may cost to read (sizes, cells, quarantine)",
    "working_days": "the State Council's holidays and make-up working days, not the notice's",
    "run_window_grace_days": "how long after the last escalation a dated run still acts (late after-event duties)",
    "pool.artifact_rows": "how many rows a pool table artifact shows",
    "pool.approval_timeout_minutes": "how long the pool's approval pause waits before reminding the operator",
}

CN_DIGITS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def _chinese_number(text: str) -> int:
    if text.startswith("十"):
        text = "一" + text
    if "十" in text:
        tens, _, ones = text.partition("十")
        return CN_DIGITS[tens] * 10 + (CN_DIGITS[ones] if ones else 0)
    return CN_DIGITS[text]


def notice_values(text: str, year: int = 2022) -> tuple[set[float], set[dt.date]]:
    """The numbers and dates the notice states (its index number, a catalogue code, left out)."""
    text = "\n".join(line for line in text.splitlines() if not line.startswith("索引号"))
    dates: set[dt.date] = set()

    def full_date(m: re.Match[str]) -> str:
        dates.add(dt.date(int(m[1]), int(m[2]), int(m[3])))
        return " "

    def month_end(m: re.Match[str]) -> str:
        month = int(m[1])
        dates.add(dt.date(year, month, calendar.monthrange(year, month)[1]))
        return " "

    text = re.sub(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日", full_date, text)
    text = re.sub(r"(\d{1,2})\s*月底", month_end, text)
    numbers: set[float] = set()
    for m in re.finditer(r"(\d+(?:\.\d+)?)\s*%", text):
        numbers |= {float(m[1]), float(m[1]) / 100}
    numbers |= {float(m) for m in re.findall(r"\d+(?:\.\d+)?", text)}
    numbers |= {
        float(_chinese_number(m)) for m in re.findall(r"([一二两三四五六七八九十]+)(?=[次个级篇名批])", text)
    }
    return numbers, dates


def leaves(data: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every scalar of a campaign file with its path, as `illustrative_values` names it."""
    if isinstance(data, dict):
        out = []
        for key, value in data.items():
            out += leaves(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(data, list):
        out = []
        for i, item in enumerate(data):
            name = f"[{item['key']}]" if isinstance(item, dict) and "key" in item else f"[{i}]"
            out += leaves(item, path + name)
        return out
    return [(path, data)]


def covers(declared: str, path: str) -> bool:
    return path == declared or path.startswith((declared + ".", declared + "["))


def test_notice_values_are_read_as_the_notice_writes_them() -> None:
    numbers, dates = notice_values(NOTICE)
    assert {
        dt.date(2022, 6, 21),
        dt.date(2022, 6, 27),
        dt.date(2022, 6, 30),  # 三(一) "6月底前"
        dt.date(2022, 10, 31),  # 三(六) "10 月底前"
        dt.date(2021, 6, 1),
        dt.date(2022, 5, 31),
    } == dates
    assert {120, 100, 1.0, 2, 3, 96885, 2021, 2022} <= numbers  # 1.0: "100%"; 2: 市级不少于2次
    assert not {5, 10, 31, 30, 0.6} & numbers  # a date's parts are no quantity


def test_every_value_the_notice_does_not_give_is_declared() -> None:
    """The 2022 file's numbers and dates that are not the notice's are each under an `illustrative_values`
    path (shown by `campaign check`) or in an engineering section above."""
    raw = yaml.safe_load((get_settings().config_dir / "campaigns" / "2022.yaml").read_text(encoding="utf-8"))
    declared = [item["path"] for item in raw.pop("illustrative_values")]
    numbers, dates = notice_values(NOTICE)
    foreign = []
    for path, value in leaves(raw):
        if isinstance(value, bool) or not isinstance(value, int | float | dt.date):
            continue
        given = value in dates if isinstance(value, dt.date) else float(value) in numbers
        if given or any(covers(p, path) for p in [*declared, *ENGINEERING]):
            continue
        foreign.append(f"{path} = {value}")
    assert foreign == []


# ------------------------------------------------------------------ numbers in the rules' code
RULES = ("models/assessment.py", "models/services.py", "models/review.py", "models/pool.py")
TOLERANCE = 1e-9  # float comparison
# (file, the literal's source line, stripped, must contain this) -> why it is no campaign policy
CODE_NUMBERS = {
    ("models/pool.py", "RANK = {"): "the levels' order, county < city < province",
    ("models/pool.py", "365.25"): "days per year, to count years of operation",
    ("models/services.py", "ctx.earliest.year - 5"): "a typed 资金年度's plausibility, not policy",
}


def _numbers_in(path: Path) -> list[tuple[int, float, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "round":  # display precision
                allowed |= {id(a) for a in node.args}
            allowed |= {id(k.value) for k in node.keywords if k.arg == "limit"}  # a sheet's sanity limit
    return [
        (node.lineno, node.value, lines[node.lineno - 1].strip())
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
        and node.value not in (0, 1, TOLERANCE)
        and id(node) not in allowed
    ]


def test_the_rules_hold_no_policy_number_of_their_own() -> None:
    """A number in models/'s rules is the campaign's (config, declared above) unless listed here with why:
    display precision, a sheet's sanity limits, float tolerance, the levels' order, days per year."""
    found = [
        f"{name}:{line}: {value!r} in {text!r}"
        for name in RULES
        for line, value, text in _numbers_in(REPO / name)
        if not any(f == name and snippet in text for f, snippet in CODE_NUMBERS)
    ]
    assert found == []
