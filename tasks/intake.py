"""Taking in submissions: files dropped in the inbox, and records an operator makes in the UI.

Nothing is lost: an accepted file is archived unchanged under its hash before the database records
it; a refused file is moved aside with its reason recorded and the sender told; the same file twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, select

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import Obligation, Unit
from config.settings import get_settings
from models.clock import local_date, moment
from models.db import insert_ignoring_duplicates, session_scope
from models.deadlines import Period, days_late
from models.messages import one_line, render
from models.outbox import outbox_key
from models.planning import Decision, period_label
from models.submissions import identify_unit, period_for, screen
from models.tables import IntakeRejection, MessageKind, ObligationInstance, ObligationStatus, Submission
from tasks.files import copy_atomically
from tasks.notify import enqueue
from tasks.unit_of_work import task
from tasks.workbooks import private_folder

log = logging.getLogger(__name__)


@dataclass
class IntakeSummary:
    accepted: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[dict[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "accepted": len(self.accepted),
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
        }


def archive(path: Path, sha: str, *folders: str) -> Path:
    """Copy a received file, unchanged, to the archive under its hash; readable only by the service;
    a second copy is not made."""
    target = private_folder(get_settings().archive.joinpath(*folders)) / f"{sha[:16]}-{path.name}"
    if not target.exists():
        copy_atomically(path, target)
    return target


# ---------------------------------------------------------------- what waits in an inbox
@dataclass(frozen=True)
class InboxEntry:
    """One thing found in an inbox folder. `refusal` is set for anything that is not a regular file;
    such an entry is never opened, followed or copied."""

    path: Path
    refusal: str | None = None


def safe_name(raw: str) -> str:
    """A file name as people read it: bytes that are not UTF-8 decoded as GB18030 (what unzipping a
    Chinese Windows archive leaves), else escaped; control characters and line breaks made spaces."""
    data = os.fsencode(raw)
    for encoding in ("utf-8", "gb18030"):
        try:
            name = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        name = data.decode("utf-8", errors="backslashreplace")
    return one_line(name) or "未命名文件"


def scan_inbox(folder: Path) -> list[InboxEntry]:
    """Everything waiting in an inbox folder (hidden files aside), in name order.

    A regular file whose name is not safe text is renamed in place to its decoded name, so every later
    step (archive, messages, the database) handles ordinary text. Links, folders and special files are
    returned with a refusal and are never followed.
    """
    private_folder(folder)
    entries = []
    with os.scandir(folder) as found:
        for entry in sorted(found, key=lambda e: os.fsencode(e.name)):
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                entries.append(InboxEntry(path, "是符号链接（快捷方式），不予受理：请直接报送文件本身"))
            elif entry.is_dir(follow_symlinks=False):
                entries.append(InboxEntry(path, "是文件夹，不予受理：请将文件直接放入收件箱，或打包为 ZIP"))
            elif not entry.is_file(follow_symlinks=False):
                entries.append(InboxEntry(path, "不是普通文件（设备、管道或套接字），不予受理"))
            else:
                entries.append(InboxEntry(_renamed_safely(path)))
    return entries


def _renamed_safely(path: Path) -> Path:
    name = safe_name(path.name)
    if name == path.name:
        return path
    target = path.with_name(name)
    if target.exists() or target.is_symlink():
        digest = hashlib.sha256(os.fsencode(path.name)).hexdigest()[:8]
        target = path.with_name(f"{target.stem}-{digest}{target.suffix}")
    path.rename(target)
    return target


def refuse_entry(
    cfg: CampaignConfig, ob: Obligation, entry: InboxEntry, received_at: dt.datetime
) -> dict[str, str]:
    """Record and report an inbox entry that is not a regular file; links and special files leave the
    inbox (the entry itself, never what it points to), folders stay where they are."""
    name = safe_name(entry.path.name)
    stat = entry.path.lstat()
    identity = hashlib.sha256(f"entry|{name}|{stat.st_ino}|{stat.st_mtime_ns}".encode()).hexdigest()
    unit = identify_unit(name, list(cfg.units))
    with session_scope() as session:
        refuse_file(
            session,
            cfg,
            path=entry.path,
            sha=identity,
            ob=ob,
            unit=unit,
            reason=entry.refusal or "",
            received_at=received_at,
            keep=False,
            name=name,
        )
    if not entry.path.is_dir() or entry.path.is_symlink():
        entry.path.unlink(missing_ok=True)
    return {"file": f"{ob.key}/{name}", "name": name, "reason": entry.refusal or "", "kept_at": ""}


def refuse_after_error(
    cfg: CampaignConfig, ob: Obligation, path: Path, received_at: dt.datetime, exc: BaseException
) -> dict[str, str]:
    """A file whose intake failed in an unexpected way: set aside and its sender told, like any refusal,
    so one odd file never stops the run."""
    log.exception("收件处理出错：%s", path.name)
    reason = f"文件无法处理（{type(exc).__name__}），已留存待省就业服务局核查；请核对文件后重新报送"
    unit = identify_unit(path.name, list(cfg.units))
    try:
        sha = sha256_of(path)
        with session_scope() as session:
            kept = refuse_file(
                session, cfg, path=path, sha=sha, ob=ob, unit=unit, reason=reason, received_at=received_at
            )
    except Exception:  # the file itself may be what fails: keep it in the inbox for a person
        log.exception("无法留存出错的文件：%s", path.name)
        return {"file": f"{ob.key}/{path.name}", "reason": reason, "kept_at": str(path)}
    path.unlink(missing_ok=True)
    return {"file": f"{ob.key}/{path.name}", "reason": reason, "kept_at": kept}


def submitted_file(value: str | Path) -> Path:
    """A file an operator names in a form or on the command line: only a regular file inside the inbox
    or upload folders, reached without links. Anything else is refused before it is read."""
    settings = get_settings()
    given = Path(value)
    if not given.is_absolute():
        raise SubmissionError(str(value), "请填写文件在服务器上的完整路径（收件箱或上传目录内）")
    if given.is_symlink():
        raise SubmissionError(given.name, "路径含符号链接，不予受理")
    # Resolved, so a linked folder on the way cannot lead outside; the allowed folders resolved alike.
    real = Path(os.path.realpath(given))
    allowed = [Path(os.path.realpath(folder)) for folder in (settings.inbox, settings.uploads)]
    if not any(real.is_relative_to(folder) for folder in allowed):
        places = "、".join(str(folder) for folder in allowed)
        raise SubmissionError(given.name, f"只受理收件箱或上传目录内的文件（{places}）")
    if not real.is_file():
        raise SubmissionError(given.name, "文件不存在或不是普通文件")
    return real


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Accepted:
    ob: Obligation
    unit: Unit
    period: Period
    dedupe_key: str
    source: str
    submitted_by: str
    received_at: dt.datetime
    file_name: str | None
    archived_path: str | None
    note: str = ""


def store_submissions(session: Session, cfg: CampaignConfig, items: list[Accepted]) -> set[str]:
    """Record accepted submissions, satisfy their obligations and queue receipts: one transaction.

    Returns the dedupe keys of the items that had been received before (duplicates, left alone).
    """
    if not items:
        return set()
    year = cfg.campaign.year
    wanted = {(a.ob.key, a.unit.key, a.period.label) for a in items}
    rows = session.exec(
        select(
            ObligationInstance.id,
            ObligationInstance.obligation_key,
            ObligationInstance.unit_key,
            ObligationInstance.period,
        ).where(
            ObligationInstance.year == year,
            ObligationInstance.obligation_key.in_({k[0] for k in wanted}),  # type: ignore[attr-defined]
            ObligationInstance.unit_key.in_({k[1] for k in wanted}),  # type: ignore[attr-defined]
        )
    ).all()
    instance = {(r[1], r[2], r[3]): r[0] for r in rows}
    existing = {
        (oid, key)
        for oid, key in session.exec(
            select(Submission.obligation_id, Submission.dedupe_key).where(
                Submission.obligation_id.in_(list(instance.values()))  # type: ignore[attr-defined]
            )
        ).all()
    }
    new_rows, decisions, satisfied = [], [], {}
    duplicates: set[str] = set()
    for a in items:
        oid = instance[(a.ob.key, a.unit.key, a.period.label)]
        if (oid, a.dedupe_key) in existing:
            duplicates.add(a.dedupe_key)
            continue
        existing.add((oid, a.dedupe_key))
        new_rows.append(
            {
                "obligation_id": oid,
                "dedupe_key": a.dedupe_key,
                "source": a.source,
                "submitted_by": a.submitted_by,
                "received_at": a.received_at,
                "file_name": a.file_name,
                "archived_path": a.archived_path,
                "note": a.note,
            }
        )
        satisfied.setdefault(oid, a.received_at)
        late = days_late(local_date(a.received_at, cfg.campaign), a.period.due)
        message = render(
            "receipt",
            {
                "campaign": cfg.campaign,
                "obligation": a.ob,
                "unit": a.unit,
                "received_at": a.received_at,
                "file_name": a.file_name,
                "period_label": period_label(a.period),
                "days_late": late,
            },
        )
        decisions.append(
            Decision(
                a.unit.key,
                oid,
                MessageKind.receipt,
                "",
                outbox_key(MessageKind.receipt, cfg.campaign.year, oid, a.dedupe_key),
                message,
            )
        )
    insert_ignoring_duplicates(session, Submission, new_rows, unique=["obligation_id", "dedupe_key"])
    for oid, received_at in satisfied.items():
        session.execute(
            sa.update(ObligationInstance)
            .where(ObligationInstance.id == oid, ObligationInstance.status == ObligationStatus.open)  # type: ignore[arg-type]
            .values(status=ObligationStatus.submitted, submitted_at=received_at)
        )
    enqueue(session, decisions)
    return duplicates


def refuse_file(
    session: Session,
    cfg: CampaignConfig,
    *,
    path: Path,
    sha: str,
    ob: Obligation,
    unit: Unit | None,
    reason: str,
    received_at: dt.datetime,
    keep: bool = True,
    name: str | None = None,
) -> str:
    """Keep the refused file aside (unless `keep` is off: a link or special file is never copied), record
    why, and tell its sender (or the province, if unknown). `name` is the file's name as shown, when
    the entry's own name is not safe text."""
    shown = name or path.name
    kept = str(archive(path, sha, "rejected")) if keep else ""
    added = insert_ignoring_duplicates(
        session,
        IntakeRejection,
        [
            {
                "file_name": shown,
                "sha256": sha,
                "unit_key": unit.key if unit else None,
                "obligation_key": ob.key,
                "reason": reason,
                "kept_at": kept,
                "received_at": received_at,
            }
        ],
        unique=["sha256", "file_name"],
    )
    recipient = unit or cfg.province
    if added:
        period_due = None
        if unit is not None:
            period = period_for(cfg.campaign, ob, local_date(received_at, cfg.campaign))
            period_due = period.due if period else None
        message = render(
            "rejection",
            {
                "campaign": cfg.campaign,
                "unit": recipient,
                "file_name": shown,
                "reason": reason,
                "obligation": ob if period_due else None,
                "due": period_due,
            },
        )
        enqueue(
            session,
            [
                Decision(
                    recipient.key,
                    None,
                    MessageKind.rejection,
                    "",
                    outbox_key(MessageKind.rejection, cfg.campaign.year, sha, shown),
                    message,
                )
            ],
        )
    return kept


@task(name="take-in-inbox", description="收件箱收件", cache_policy=NO_CACHE)
def take_in_inbox(cfg: CampaignConfig, obligation_keys: list[str], today: dt.date) -> IntakeSummary:
    """Read every file waiting in the inbox folders of these obligations, each on its own: whatever one
    file is or does, it ends accepted or refused with its reason, and the others go on."""
    settings = get_settings()
    summary = IntakeSummary()
    received_at = moment(today, cfg.campaign)
    for key in obligation_keys:
        ob = cfg.campaign.obligation(key)
        for entry in scan_inbox(settings.inbox / key):
            if entry.refusal is not None:
                summary.rejected.append(refuse_entry(cfg, ob, entry, received_at))
                continue
            try:
                _take_in_document(cfg, ob, entry.path, today, received_at, summary)
            except Exception as exc:
                summary.rejected.append(refuse_after_error(cfg, ob, entry.path, received_at, exc))
    return summary


def _take_in_document(
    cfg: CampaignConfig,
    ob: Obligation,
    path: Path,
    today: dt.date,
    received_at: dt.datetime,
    summary: IntakeSummary,
) -> None:
    """One file, one transaction; the inbox copy goes only after the commit."""
    verdict = screen(
        file_name=path.name,
        size=path.stat().st_size,
        campaign=cfg.campaign,
        ob=ob,
        units=list(cfg.units),
        day=today,
    )
    sha = sha256_of(path)
    with session_scope() as session:
        if not verdict.accepted:
            assert verdict.reason is not None
            kept = refuse_file(
                session,
                cfg,
                path=path,
                sha=sha,
                ob=ob,
                unit=verdict.unit,
                reason=verdict.reason,
                received_at=received_at,
            )
            summary.rejected.append(
                {"file": f"{ob.key}/{path.name}", "reason": verdict.reason, "kept_at": kept}
            )
        else:
            assert verdict.unit is not None and verdict.period is not None
            archived = archive(path, sha, str(cfg.campaign.year), ob.key, verdict.unit.key)
            item = Accepted(
                ob,
                verdict.unit,
                verdict.period,
                f"sha256:{sha}",
                "inbox",
                verdict.unit.name,
                received_at,
                path.name,
                str(archived),
            )
            if store_submissions(session, cfg, [item]):
                summary.duplicates.append(f"{ob.key}/{path.name}")
            else:
                summary.accepted.append(
                    {
                        "file": f"{ob.key}/{path.name}",
                        "unit": verdict.unit.name,
                        "period": verdict.period.label,
                    }
                )
    path.unlink(missing_ok=True)  # the archive and the database both hold it now


def record_operator_submission(
    cfg: CampaignConfig,
    *,
    obligation_key: str,
    unit_key: str,
    submitted_on: dt.date,
    submitted_by: str,
    note: str = "",
    file_path: Path | None = None,
) -> bool:
    """An operator records a submission received outside the inbox (e-mail, paper, IM). True if new."""
    ob = cfg.campaign.obligation(obligation_key)
    try:
        unit = cfg.unit(unit_key)
    except KeyError:
        raise SubmissionError(unit_key, f"未知单位 {unit_key}") from None
    if file_path is not None:
        file_path = submitted_file(file_path)
    verdict = screen(
        file_name=file_path.name if file_path else "登记.pdf",  # no file: only the sender is checked
        size=file_path.stat().st_size if file_path else 1,
        campaign=cfg.campaign,
        ob=ob,
        units=[unit],
        day=submitted_on,
        unit=unit,
    )
    if not verdict.accepted:
        raise SubmissionError(file_path.name if file_path else obligation_key, verdict.reason or "", unit.key)
    assert verdict.period is not None
    if file_path is not None:
        sha = sha256_of(file_path)
        archived: str | None = str(archive(file_path, sha, str(cfg.campaign.year), ob.key, unit.key))
    else:  # the record itself is what was received
        sha = hashlib.sha256(
            f"operator|{obligation_key}|{unit_key}|{submitted_on}|{note}".encode()
        ).hexdigest()
        archived = None
    item = Accepted(
        ob,
        unit,
        verdict.period,
        f"sha256:{sha}",
        "operator",
        submitted_by,
        moment(submitted_on, cfg.campaign),
        file_path.name if file_path else None,
        archived,
        note,
    )
    with session_scope() as session:
        duplicates = store_submissions(session, cfg, [item])
    return not duplicates
