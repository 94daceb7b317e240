"""What a unit's page shows, read from the tables the flows write: what it owes, what it sent and what
became of each file, and (for a city) how its counties stand."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import select

from config import CampaignConfig
from config.schema import Level, Rolling, Unit
from config.settings import get_settings
from models.db import session_scope
from models.deadlines import calendar_for, campaign_window, working_days_left
from models.tables import InboxFault, IntakeFile, IntakeRejection, ObligationInstance, Submission, Upload
from tasks.catalog import Drop, drops
from tasks.uploads import receipt, uploads_of

LABELS = {
    "done": "已完成",
    "late_done": "逾期完成",
    "open": "进行中",
    "late": "逾期未报",
    "not_started": "未开始",
    "rolling": "常年受理",
}


def closed_text(cfg: CampaignConfig, today: dt.date) -> str | None:
    """Why the page takes no uploads today (the year's campaign has not begun or is over), else None.
    Its flows would refuse to take in a file dated outside the campaign (flows/dated.py)."""
    window = campaign_window(cfg.campaign)
    where = window.outside(today)
    if where is None:
        return None
    year = cfg.campaign.year
    return (
        f"{year}年度报送{where}（{window.opens:%Y-%m-%d} 至 {window.closes:%Y-%m-%d}），本页仅供查阅，"
        f"暂不受理上传。如需补报，请联系{cfg.province.bureau}。"
    )


@dataclass
class Owed:
    """One obligation on the page: what it is, by when, how it stands, where its files go."""

    key: str
    title: str
    source: str
    how_to_submit: str
    due: dt.date | None
    days_left: int | None  # working days until the due date (negative: late)
    state: str  # a key of LABELS
    progress: str
    drops: list[Drop] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.state]


def _state(rows: list[Any], today: dt.date) -> tuple[str, dt.date | None, str]:
    """An obligation's state for one unit over its instances (periods, projects): the worst."""
    open_rows = [r for r in rows if r.status == "open"]
    if not open_rows:
        late = any(r.submitted_at and r.submitted_at.date() > r.due_on for r in rows)
        return ("late_done" if late else "done"), max(r.due_on for r in rows), ""
    current = min(open_rows, key=lambda r: r.due_on)
    note = "；".join(dict.fromkeys(r.progress_note for r in open_rows if r.progress_note))
    if current.due_on < today:
        return "late", current.due_on, note
    if current.kickoff_on > today:
        return "not_started", current.due_on, note
    return "open", current.due_on, note


def owed(cfg: CampaignConfig, unit: Unit, today: dt.date) -> list[Owed]:
    """Everything the unit owes this year that it answers with files, in the campaign file's order."""
    where = drops(cfg)
    cal = calendar_for(cfg.campaign)
    with session_scope() as session:
        instances = session.exec(
            select(ObligationInstance).where(
                ObligationInstance.year == cfg.campaign.year, ObligationInstance.unit_key == unit.key
            )
        ).all()
        by_key: dict[str, list[Any]] = {}
        for row in instances:
            by_key.setdefault(row.obligation_key, []).append(row.model_copy())
    out = []
    for ob in cfg.campaign.obligations:
        if ob.key not in where:
            continue
        rolling = isinstance(ob.schedule, Rolling)
        owes = ob.key in by_key or (rolling and (unit.level in ob.owed_by or unit.key in ob.units))
        if not owes:
            continue
        if rolling:
            state, due, note = "rolling", None, ""
        else:
            state, due, note = _state(by_key[ob.key], today)
        out.append(
            Owed(
                key=ob.key,
                title=ob.title,
                source=ob.source,
                how_to_submit=ob.how_to_submit,
                due=due,
                days_left=working_days_left(cal, today, due)
                if due and state in ("open", "not_started")
                else None,
                state=state,
                progress=note,
                drops=where[ob.key],
            )
        )
    return out


@dataclass
class Sent:
    """One uploaded file and what became of it."""

    id: int
    receipt: str
    name: str
    size: int
    received_at: str
    obligation: str
    uploaded_by: str
    state: str  # waiting | accepted | refused | kept
    result: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_workbook: bool = False

    def as_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def sent(cfg: CampaignConfig, unit: Unit, limit: int = 30) -> list[Sent]:
    """The unit's recent uploads, newest first, each with its outcome from the intake's own tables."""
    uploads = uploads_of(unit.key, cfg.campaign.year, limit)
    if not uploads:
        return []
    shas = {u.sha256 for u in uploads}
    titles = {o.key: o.title for o in cfg.campaign.obligations}
    zone = ZoneInfo(cfg.campaign.timezone)
    with session_scope() as session:
        # Another unit may have sent the very same bytes: its outcome (rows, errors) is not this unit's.
        files = {
            (f.obligation_key, f.sha256): f.model_copy()
            for f in session.exec(select(IntakeFile).where(IntakeFile.sha256.in_(shas))).all()  # type: ignore[attr-defined]
        }
        accepted = set(
            session.exec(
                select(Submission.dedupe_key)
                .join(ObligationInstance, ObligationInstance.id == Submission.obligation_id)  # type: ignore[arg-type]
                .where(
                    ObligationInstance.unit_key == unit.key,
                    Submission.dedupe_key.in_([f"sha256:{s}" for s in shas]),  # type: ignore[attr-defined]
                )
            ).all()
        )
        refused = {
            (r.sha256, r.file_name): r.reason
            for r in session.exec(select(IntakeRejection).where(IntakeRejection.sha256.in_(shas))).all()  # type: ignore[attr-defined]
        }
        faults = {
            (f.folder, f.file_name): f
            for f in session.exec(select(InboxFault).where(InboxFault.sha256.in_(shas))).all()  # type: ignore[attr-defined]
        }
    out = []
    for u in uploads:
        item = Sent(
            id=u.id or 0,
            receipt=receipt(u),
            name=u.original_name,
            size=u.size,
            received_at=u.received_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
            obligation=titles.get(u.obligation_key, u.obligation_key),
            uploaded_by=u.uploaded_by,
            state="waiting",
            result="已收到，等待处理（一般在 1 分钟内完成）",
        )
        record = files.get((u.folder, u.sha256))
        if record is not None and record.unit_key != unit.key:
            item.state = "refused"
            item.result = "未处理：与其他单位已报送的文件内容完全相同，请确认上传的是本单位的文件"
        elif record is not None:
            counts = record.counts or {}
            rejected, read = int(counts.get("rejected", 0)), int(counts.get("rows_read", 0))
            if rejected and rejected >= read:  # not one row taken in: nothing of it was accepted
                item.state = "refused"
                item.result = f"未受理：读取 {read} 行，全部有错误，请下载错误清单，更正后重新上传"
            else:
                item.state = "accepted"
                item.result = f"已受理：读取 {read} 行" + (
                    f"，其中 {rejected} 行有错误，请下载错误清单，更正后重新上传"
                    if rejected
                    else "，全部通过"
                )
            item.errors = list(record.errors or [])
            item.error_workbook = bool(record.error_workbook and Path(record.error_workbook).is_file())
        elif f"sha256:{u.sha256}" in accepted:
            item.state, item.result = "accepted", "已受理"
        elif (u.sha256, u.stored_name) in refused:
            item.state, item.result = "refused", f"已退回：{refused[(u.sha256, u.stored_name)]}"
        elif (u.folder, u.stored_name) in faults:
            fault = faults[(u.folder, u.stored_name)]
            item.state = "kept"
            item.result = (
                "系统原因暂未处理（不是贵单位的问题），已转省就业服务局核查"
                if fault.quarantined_at
                else "系统原因暂未处理（不是贵单位的问题），将自动重试，无需重新上传"
            )
        elif not (get_settings().inbox / u.folder / u.stored_name).exists():
            item.result = "已收到，正在处理"
        out.append(item)
    return out


def error_workbook(cfg: CampaignConfig, unit: Unit, upload_id: int) -> Path | None:
    """The error workbook of one of the unit's own uploads (None for another unit's, or none)."""
    if not 0 < upload_id < 2**31:  # not a row number the database could hold
        return None
    with session_scope() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.unit_key != unit.key or upload.year != cfg.campaign.year:
            return None
        record = session.exec(
            select(IntakeFile).where(
                IntakeFile.obligation_key == upload.folder,
                IntakeFile.sha256 == upload.sha256,
                IntakeFile.unit_key == unit.key,
            )
        ).first()
        if record is None or not record.error_workbook:
            return None
        path = Path(record.error_workbook)
    return path if path.is_file() else None


def counties(cfg: CampaignConfig, city: Unit, today: dt.date) -> list[dict[str, Any]]:
    """A city's counties and how each stands on each obligation it owes (as the city's escalations
    report them)."""
    if city.level is not Level.city:
        return []
    members = [u for u in cfg.units if u.reports_to == city.key]
    if not members:
        return []
    titles = {o.key: o.short or o.title for o in cfg.campaign.obligations}
    table = ObligationInstance.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(
            sa.select(table).where(
                table.c.year == cfg.campaign.year, table.c.unit_key.in_([u.key for u in members])
            )
        ).all()
    grouped: dict[tuple[str, str], list[Any]] = {}
    for row in rows:
        grouped.setdefault((row.unit_key, row.obligation_key), []).append(row)
    out = []
    for unit in members:
        states = []
        for ob in cfg.campaign.obligations:
            found = grouped.get((unit.key, ob.key))
            if found:
                state, due, _ = _state(found, today)
                states.append({"title": titles[ob.key], "state": state, "label": LABELS[state], "due": due})
        out.append({"name": unit.name, "key": unit.key, "states": states})
    return out
