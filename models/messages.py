"""Rendering notifications from the Jinja2 templates in config/templates, and fitting them to a channel.

Every rendered message passes through `mask_personal_data`, whatever the template put in it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import jinja2.runtime

from config.settings import get_settings
from models.privacy import mask_personal_data

# What each channel accepts for one text message, in UTF-8 bytes (subject and body together).
# WeCom bots: 2,048 bytes of text; DingTalk robots: 20,000; Feishu bots: a 20 KB request body.
CHANNEL_LIMITS: dict[str, int | None] = {
    "email": None,
    "mailbox": None,
    "wecom": 2048,
    "dingtalk": 20000,
    "feishu": 18000,
    "apprise": 4000,
}
TRUNCATION_MARK = "\n……（内容过长已截断，完整内容见邮件或系统）"


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _cn_date(value: dt.date) -> str:
    return f"{value.year}年{value.month}月{value.day}日"


@jinja2.pass_context
def _cn_datetime(context: jinja2.runtime.Context, value: dt.datetime) -> str:
    """A moment in the campaign's own time zone (every template that shows one is given `campaign`)."""
    local = value.astimezone(ZoneInfo(context["campaign"].timezone))
    return f"{_cn_date(local.date())} {local:%H:%M}"


@lru_cache(maxsize=4)
def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # plain text messages, not HTML
        keep_trailing_newline=False,
    )
    env.filters["cn_date"] = _cn_date
    env.filters["cn_datetime"] = _cn_datetime
    return env


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def one_line(text: str) -> str:
    """Text fit for a header or a title: control characters and line breaks become one space."""
    return _CONTROL.sub(" ", text).strip()


def clip(text: str, limit: int) -> str:
    """A value quoted back to a person, cut to `limit` characters and saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}…（共 {len(text)} 字，已截断）"


def render(template: str, context: dict[str, Any]) -> Rendered:
    env = _environment(get_settings().config_dir / "templates")
    tpl = env.get_template(f"{template}.j2")
    ctx = tpl.new_context(context)
    subject = one_line("".join(tpl.blocks["subject"](ctx)))
    body = "".join(tpl.blocks["body"](ctx)).strip() + "\n"
    return Rendered(mask_personal_data(subject), mask_personal_data(body))


def fit_to_channel(text: str, channel_kind: str) -> str:
    """Cut text to the channel's byte limit on a character boundary, saying that it was cut. A last
    line that is a link (the unit's page) is kept whole after the cut: it is how the rest is read."""
    limit = CHANNEL_LIMITS.get(channel_kind)
    data = text.encode("utf-8")
    if limit is None or len(data) <= limit:
        return text
    head, _, last = text.rstrip().rpartition("\n")
    tail = f"\n{last}" if "http" in last and len(last.encode()) < limit // 4 else ""
    if not tail:
        head = text
    room = limit - len(TRUNCATION_MARK.encode("utf-8")) - len(tail.encode("utf-8"))
    return head.encode("utf-8")[:room].decode("utf-8", errors="ignore") + TRUNCATION_MARK + tail


# How each message kind and each count of a run is named in Chinese summaries and tables.
COUNT_LABELS = {
    "queued": "新入队",
    "kickoff": "启动通知",
    "reminder": "提醒",
    "overdue": "逾期告知",
    "escalation": "督办",
    "receipt": "受理回执",
    "rejection": "退回通知",
    "intake_result": "处理结果",
    "approval_due": "待审批提醒",
    "recommendation": "推荐结果",
    "flag": "预警",
    "review_result": "评审结果",
    "exchange": "交流会通知",
    "scorecard": "评分卡",
}


DELIVERY_LABELS = {"sent": "已发送", "retrying": "待重试", "dead": "停止重试", "left": "留待下次"}
INTAKE_LABELS = {"accepted": "受理", "duplicates": "重复", "rejected": "退回"}


def run_summary(title: str, day: dt.date, counts: dict[str, Any]) -> str:
    """A dated run's closing line in the operator's words: "三(一)实地调研 2022-06-21 办理完毕。通知：
    启动通知 70，新入队 70；投递：已发送 70；收件：受理 3，退回 1。" (parts with nothing to say are left out)."""
    parts = []
    if counts.get("notifications"):
        parts.append("通知：" + counts_text(counts["notifications"]))
    if counts.get("delivery"):
        parts.append("投递：" + _labelled(counts["delivery"], DELIVERY_LABELS))
    files = counts.get("intake")
    files = files.get("files", files) if isinstance(files, dict) else None
    if files and any(isinstance(v, int) and v for v in files.values()):
        parts.append("收件：" + _labelled(files, INTAKE_LABELS))
    if isinstance(counts.get("files"), list):
        workbooks = counts["files"]
        refused = sum(1 for f in workbooks if f.get("refused"))
        parts.append(f"申报表 {len(workbooks)} 个" + (f"（退回 {refused} 个）" if refused else ""))
    for key, label in (("proposals_open", "待审批推荐"), ("namings_open", "待审批命名")):
        if counts.get(key):
            parts.append(f"{label} {counts[key]} 项")
    return f"{title} {day:%Y-%m-%d} 办理完毕。" + ("；".join(parts) or "本日无新的通知、投递或收件") + "。"


def _labelled(counts: dict[str, Any], labels: dict[str, str]) -> str:
    shown = [f"{labels.get(k, k)} {v}" for k, v in counts.items() if isinstance(v, int) and v]
    return "，".join(shown) or "无"


def counts_text(counts: dict[str, int]) -> str:
    """ "启动通知 70，新入队 70": a run's counts for a Chinese summary (unknown keys shown as they are)."""
    return "，".join(f"{COUNT_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items()) if v) or "无"
