"""全省进度一览: the campaign at a glance, refreshed by every dated run under one artifact key.

Unit × obligation with each cell's status, the messages that could not be delivered, the files refused
in the last seven days and why, and a heat map of the grid (units grouped by city down, obligations
across), saved in the reports folder and shown in the artifact.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from config import CampaignConfig
from config.schema import Level
from config.settings import get_settings
from models import markdown
from models.db import session_scope
from models.tables import IntakeRejection, ObligationInstance, ObligationStatus, OutboxMessage, OutboxStatus
from tasks.artifacts import markdown_table, report_link
from tasks.charts import heat_map
from tasks.inbox import open_faults
from tasks.links import operator_page_url
from tasks.review import kept_back
from tasks.unit_of_work import task
from tasks.workbooks import write_report

# Worst first: a cell shows the worst state among its instances (periods, projects).
STATES = ("late", "pending", "late_met", "met", "not_owed")
LABELS = {
    "late": "逾期未报",
    "pending": "进行中",
    "late_met": "逾期完成",
    "met": "已完成",
    "not_owed": "不适用",
}
COLOURS = {
    "late": "#d9534f",
    "pending": "#9ecae1",
    "late_met": "#f0ad4e",
    "met": "#5cb85c",
    "not_owed": "#eeeeee",
}
KEY = "campaign-overview"
MAX_MAP_ROWS = 200  # more units than this (a national roll-out) are shown by city
MAX_TABLE_ROWS = 120  # rows of the grid in the artifact itself; the whole grid is in the workbook
MAX_EMBEDDED_PNG = 400_000


def cell_states(instances: pd.DataFrame, today: dt.date, timezone: str) -> pd.Series:
    """Each instance's state as of `today`: met / late_met (submitted, after the due date or not),
    late (open past its due date) or pending (open, not yet due)."""
    submitted = instances["status"].eq(ObligationStatus.submitted.value)
    on = pd.to_datetime(instances["submitted_at"], utc=True).dt.tz_convert(timezone).dt.tz_localize(None)
    due = pd.to_datetime(instances["due_on"])
    state = pd.Series("pending", index=instances.index)
    state[~submitted & (due < pd.Timestamp(today))] = "late"
    state[submitted] = "met"
    state[submitted & (on.dt.normalize() > due)] = "late_met"
    return state


def overview_grid(cfg: CampaignConfig, today: dt.date) -> pd.DataFrame:
    """Rows: the units owing anything, by city (each city followed by its counties); columns: the
    obligations in config order; cells: state keys (see STATES)."""
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(
            sa.select(
                table.c.unit_key, table.c.obligation_key, table.c.status, table.c.submitted_at, table.c.due_on
            ).where(table.c.year == cfg.campaign.year, table.c.kickoff_on <= today)
        ).all()
    frame = pd.DataFrame(rows, columns=["unit_key", "obligation_key", "status", "submitted_at", "due_on"])
    order = [u.key for u in _unit_order(cfg)]
    obligations = [ob.key for ob in cfg.campaign.obligations]
    if frame.empty:
        return pd.DataFrame("not_owed", index=order, columns=obligations)
    frame["state"] = cell_states(frame, today, cfg.campaign.timezone)
    frame["rank"] = frame["state"].map({s: i for i, s in enumerate(STATES)})
    worst = frame.groupby(["unit_key", "obligation_key"])["rank"].min().unstack()
    grid = worst.reindex(index=order, columns=obligations)
    return grid.apply(lambda col: col.map(lambda r: "not_owed" if pd.isna(r) else STATES[int(r)]))


def _unit_order(cfg: CampaignConfig) -> list[Any]:
    """Cities (and units reporting to the province) each followed by their counties."""
    units = [u for u in cfg.units if u.level is not Level.province]
    tops = [u for u in units if u.reports_to == cfg.province.key]
    out = []
    for top in tops:
        out.append(top)
        out += [u for u in units if u.reports_to == top.key]
    return out


def _titles(cfg: CampaignConfig) -> dict[str, str]:
    return {ob.key: ob.heading for ob in cfg.campaign.obligations}


def _recent_refusals(cfg: CampaignConfig, today: dt.date) -> list[dict[str, str]]:
    tz = ZoneInfo(cfg.campaign.timezone)  # the seven local days ending with `today`, midnight to midnight
    since = dt.datetime.combine(today - dt.timedelta(days=6), dt.time(0), tzinfo=tz)
    until = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(0), tzinfo=tz)
    names = {u.key: u.name for u in cfg.units}
    table = IntakeRejection.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(
            sa.select(table.c.received_at, table.c.unit_key, table.c.file_name, table.c.reason)
            .where(table.c.received_at >= since, table.c.received_at < until)
            .order_by(table.c.received_at.desc())
            .limit(50)
        ).all()
    return [
        {
            "时间": f"{r[0].astimezone(tz):%m-%d}",
            "单位": names.get(r[1] or "", "未识别"),
            "文件": r[2],
            "原因": r[3],
        }
        for r in rows
    ]


def _kept_files(cfg: CampaignConfig) -> list[dict[str, Any]]:
    """Files the system failed on (tasks/inbox.py), as operators read them."""
    names = {u.key: u.name for u in cfg.units}
    zone = ZoneInfo(cfg.campaign.timezone)
    return [
        {
            "收件箱": f["folder"],
            "文件": f["file_name"],
            "单位": names.get(f["unit_key"] or "", ""),
            "失败次数": f["faults"],
            "最近原因": f["reason"],
            "最近时间": f["last_at"].astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            "状态": "已隔离" if f["quarantined_at"] else "留在收件箱，待下次运行",
        }
        for f in open_faults()
    ]


def _undelivered() -> dict[str, int]:
    table = OutboxMessage.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(
            sa.select(table.c.status, sa.func.count())
            .where(table.c.status.in_([OutboxStatus.dead.value, OutboxStatus.pending.value]))
            .group_by(table.c.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


def _heat_map(
    cfg: CampaignConfig,
    grid: pd.DataFrame,
    names: dict[str, str],
    parents: dict[str, str],
    titles: dict[str, str],
    folder: Path,
    today: dt.date,
) -> Path:
    """The grid as colours: units by city down (cities in bold), obligations across; by city alone
    when there are too many units to read."""
    year = cfg.campaign.year
    owed = list(grid.columns)
    legend = [(LABELS[s], COLOURS[s]) for s in STATES]
    code = {s: i for i, s in enumerate(STATES)}
    if len(grid) > MAX_MAP_ROWS:  # by city: a city's worst state per obligation
        city_of = {u.key: (u.key if u.reports_to == cfg.province.key else u.reports_to) for u in cfg.units}
        ranked = grid.apply(lambda col: col.map(code)).groupby(lambda k: city_of[k], sort=False).min()
        map_rows, map_codes = [names[k] for k in ranked.index], ranked.to_numpy().tolist()
        heads: set[int] = set()
    else:
        map_rows = [names[k] for k in grid.index]
        map_codes = grid.apply(lambda col: col.map(code)).to_numpy().tolist()
        heads = {i for i, k in enumerate(grid.index) if parents[k] == names[cfg.province.key]}
    chart = heat_map(
        folder / "heat-map.png",
        f"{year}年度全省进度一览（截至{today}）",
        map_rows,
        [titles[k] for k in owed],
        map_codes,
        legend,
        heads,
    )

    return chart


@task(name="publish-overview", description="刷新全省进度一览（含热力图）", cache_policy=NO_CACHE)
def publish_overview(cfg: CampaignConfig, today: dt.date) -> dict[str, Any]:
    year = cfg.campaign.year
    grid = overview_grid(cfg, today)
    titles = _titles(cfg)
    owed = [key for key in grid.columns if (grid[key] != "not_owed").any()]
    grid = grid[owed]
    names = {u.key: u.name for u in cfg.units}
    parents = {u.key: names.get(u.reports_to or "", "") for u in cfg.units}
    shown = grid.rename(columns=titles).apply(lambda col: col.map(LABELS))
    shown.insert(0, "单位", [names[k] for k in grid.index])
    shown.insert(0, "上级", [parents[k] for k in grid.index])

    folder = get_settings().reports / str(year) / "overview"
    workbook = write_report(
        folder / f"{year}年度全省进度一览.xlsx",
        f"{year}年度全省进度一览（截至{today}）",
        [("进度一览", shown)],
    )
    chart = _heat_map(cfg, grid, names, parents, titles, folder, today) if owed and len(grid) else None
    tally = {LABELS[s]: int((grid == s).to_numpy().sum()) for s in STATES if s != "not_owed"}
    undelivered = _undelivered()
    refused = _recent_refusals(cfg, today)
    lines = [
        f"## {year}年度全省进度一览（截至 {today:%Y-%m-%d}）",
        "",
        "各单位 × 各项任务：" + "，".join(f"{k} {v}" for k, v in tally.items()),
        "",
        f"**投递**：失败并停止重试 {undelivered.get('dead', 0)} 条，待发送或待重试 "
        f"{undelivered.get('pending', 0)} 条"
        + ("（见 deliver_notifications 的 dead-messages 表）" if undelivered.get("dead") else ""),
        "",
        f"**近 7 天退回的文件**：{len(refused)} 个" + ("" if refused else "。"),
    ]
    if refused:
        lines += ["", markdown_table(pd.DataFrame(refused))]
    faults = _kept_files(cfg)
    if faults:
        lines += [
            "",
            f"**因系统原因未能处理的文件**：{len(faults)} 个（不是报送单位的问题，未通知报送单位；"
            "留在收件箱的由下次运行重新处理，已隔离的请系统管理员核查）",
            "",
            markdown_table(pd.DataFrame(faults)),
        ]
    if cfg.campaign.review is not None:
        with session_scope() as session:
            kept = kept_back(session, cfg)
        if not kept.empty:
            lines += [
                "",
                f"**应推尽推：符合上级入库条件而未推荐的命名基地**：{len(kept)} 个（理由由命名单位填写）",
                "",
                markdown_table(kept),
            ]
    if chart is not None:
        png = chart.read_bytes()
        lines += ["", "### 热力图", ""]
        if len(png) <= MAX_EMBEDDED_PNG:
            lines.append(f"![全省进度一览热力图](data:image/png;base64,{base64.b64encode(png).decode()})")
        lines.append(f"下载：热力图 {report_link(chart)}")
    lines += ["", f"### 各单位进度（完整表格：{report_link(workbook)}；单位名称链接到其报送页面）", ""]
    listed = shown.head(MAX_TABLE_ROWS).copy()
    # each unit's name opens its page as operators see it: what it sent, uploads on its behalf
    listed["单位"] = [
        markdown.Raw(markdown.link(names[k], operator_page_url(k, year))) for k in grid.index[:MAX_TABLE_ROWS]
    ]
    lines.append(markdown_table(listed))
    if len(shown) > MAX_TABLE_ROWS:
        lines.append(f"\n（共 {len(shown)} 个单位，此处显示前 {MAX_TABLE_ROWS} 个；完整表格见上方下载链接）")
    create_markdown_artifact(key=KEY, markdown="\n".join(lines), description=f"{year}年度全省进度一览")
    return {"units": len(grid), "obligations": len(owed), "refused_this_week": len(refused), **tally}
