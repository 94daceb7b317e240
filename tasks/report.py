"""Status of obligations as a table (pandas), and as Prefect artifacts operators read in the UI."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pandas as pd
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import aliased
from sqlmodel import select

from config import CampaignConfig
from models import markdown
from models.db import session_scope
from models.deadlines import step_label
from models.messages import counts_text
from models.tables import ObligationInstance, Unit
from tasks.artifacts import publish_table
from tasks.delivery import dead_count, dead_messages
from tasks.unit_of_work import task

# The UI shows a table artifact's first columns without scrolling: what an operator acts on comes first.
ARTIFACT_COLUMNS = [
    "单位",
    "状态",
    "最近提醒",
    "逾期天数",
    "截止日期",
    "报送时间",
    "进度",
    "事项",
    "期次",
    "上级单位",
    "代码",
]
STATUS_COLUMNS = [
    "单位",
    "代码",
    "上级单位",
    "期次",
    "事项",
    "截止日期",
    "状态",
    "进度",
    "报送时间",
    "逾期天数",
    "最近提醒",
]


def status_frame(cfg: CampaignConfig, obligation_key: str, today: dt.date) -> pd.DataFrame:
    """One row per unit and period (and project, for per-project obligations): due, submitted, progress,
    days late — straight from the tables."""
    parent = aliased(Unit)
    with session_scope() as session:
        rows = session.exec(
            select(
                Unit.name,
                Unit.key,
                parent.name,
                ObligationInstance.period,
                ObligationInstance.due_on,
                ObligationInstance.status,
                ObligationInstance.submitted_at,
                ObligationInstance.last_step,
                ObligationInstance.subject_label,
                ObligationInstance.progress_note,
            )
            .join(Unit, Unit.key == ObligationInstance.unit_key)  # type: ignore[arg-type]
            .join(parent, parent.key == Unit.reports_to, isouter=True)  # type: ignore[arg-type]
            .where(
                ObligationInstance.year == cfg.campaign.year,
                ObligationInstance.obligation_key == obligation_key,
            )
            .order_by(
                ObligationInstance.unit_key, ObligationInstance.period, ObligationInstance.subject_label
            )  # type: ignore[arg-type]
        ).all()
    df = pd.DataFrame(
        rows,
        columns=[
            "unit",
            "key",
            "parent",
            "period",
            "due",
            "status",
            "submitted_at",
            "step",
            "subject",
            "note",
        ],
    )
    if df.empty:
        return pd.DataFrame(columns=STATUS_COLUMNS)
    submitted_local = pd.to_datetime(df["submitted_at"], utc=True).dt.tz_convert(cfg.campaign.timezone)
    due = pd.to_datetime(df["due"])
    as_of = submitted_local.dt.tz_localize(None).dt.normalize().fillna(pd.Timestamp(today))
    late = (as_of - due).dt.days.clip(lower=0)
    is_submitted = df["status"].eq("submitted")
    state = pd.Series("未报送", index=df.index)
    state[~is_submitted & late.gt(0)] = "逾期未报"
    state[is_submitted] = "已报送"
    state[is_submitted & late.gt(0)] = "逾期报送"
    return pd.DataFrame(
        {
            "单位": df["unit"],
            "代码": df["key"],
            "上级单位": df["parent"].fillna(""),
            "期次": df["period"],
            "事项": df["subject"],
            "截止日期": due.dt.strftime("%Y-%m-%d"),
            "状态": state,
            "进度": df["note"],
            "报送时间": submitted_local.dt.strftime("%Y-%m-%d %H:%M").fillna(""),
            "逾期天数": late.astype(int),
            "最近提醒": df["step"].map(lambda s: step_label(s) if isinstance(s, str) else ""),
        }
    )


@task(name="publish-status", description="发布进度表", cache_policy=NO_CACHE)
def publish_status(
    cfg: CampaignConfig,
    obligation_key: str,
    today: dt.date,
    counts: dict[str, int],
    refused: list[tuple[str, str]] | None = None,
) -> dict[str, int]:
    ob = cfg.campaign.obligation(obligation_key)
    df = status_frame(cfg, obligation_key, today)
    tally = df["状态"].value_counts().to_dict() if not df.empty else {}
    key = obligation_key.replace("_", "-")
    publish_table(
        f"{key}-status",
        df[ARTIFACT_COLUMNS],
        f"{ob.title}：各单位报送进度（截至{today:%Y-%m-%d}）",
        year=cfg.campaign.year,
        title=ob.title,
    )
    lines = [
        f"### {ob.title}（{ob.source}）",
        f"截至 {today:%Y-%m-%d}：应报 {len(df)}，" + "，".join(f"{k} {v}" for k, v in sorted(tally.items())),
        "",
        "本次运行生成通知：" + counts_text(counts),
    ]
    if refused:
        lines += ["", f"**本次运行退回 {len(refused)} 个文件**（已通知报送单位）：", ""]
        lines += [f"- {markdown.text(file)}：{markdown.text(reason)}" for file, reason in refused]
    dead = dead_count()
    if dead:
        lines += [
            "",
            f"**注意：{dead} 条通知投递失败，已停止自动重试**（见 deliver_notifications 的 dead-messages 表）。"
            "修正地址或机器人配置后，运行 deliver_notifications 并勾选“重新投递失败消息”。",
        ]
    create_markdown_artifact(key=f"{key}-summary", markdown="\n".join(lines), description=ob.title)
    return {str(k): int(v) for k, v in tally.items()}


def publish_dead_messages(cfg: CampaignConfig) -> int:
    """The messages given up, as a table the province reads in the UI. Returns how many there are."""
    tz = ZoneInfo(cfg.campaign.timezone)

    rows = dead_messages()
    shown = [
        {**r, "停止时间": r["停止时间"].astimezone(tz).strftime("%Y-%m-%d %H:%M") if r["停止时间"] else ""}
        for r in rows
    ]
    description = (
        f"{len(rows)} 条通知投递失败，已停止自动重试。修正地址或机器人配置后，运行 deliver_notifications "
        "并勾选“重新投递失败消息”，或执行 campaign deliver --retry-dead。"
        if rows
        else "没有投递失败的通知。"
    )
    publish_table("dead-messages", shown, description, year=cfg.campaign.year)
    return len(rows)
