"""The one way a file leaves an inbox folder, for documents and workbooks alike.

Each file waiting in a folder is claimed in the database (two runs or two workers over one inbox never
take the same file), then handed to the folder's handler, which takes it in within one transaction:
accepted, a duplicate, or refused for a reason its sender can act on. Only once the handler returned
(its archive copy durable, its outcome committed) does the file leave the inbox.

Whose fault it was decides what happens when it goes wrong:

- the **sender's** (the file is unreadable, the wrong template, has bad rows — a `SubmissionError`):
  the handler refuses it; it is kept aside with its reason, and its sender is told — once per run, one
  message listing all of that sender's refused files (`tell_refusals`);
- the **system's** (the database, the disk, another worker, a bug — any other exception): the file
  stays in the inbox for the next run and its sender hears nothing. Operators see it in the run's log,
  its summary and the overview (`inbox_fault`); after `intake_limits.quarantine_after_faults` failed
  runs it is moved to the archive's quarantine folder, so one poisonous file cannot fail every run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from config import CampaignConfig
from config.errors import CampaignError
from config.schema import Obligation, Unit
from config.settings import get_settings, known_secret_values
from models.clock import local_date, now
from models.db import insert_ignoring_duplicates, session_scope
from models.messages import clip, one_line, render
from models.outbox import outbox_key
from models.planning import Decision
from models.privacy import mask_personal_data, redact
from models.submissions import identify_unit, period_for
from models.tables import InboxFault, IntakeRejection, MessageKind
from tasks.files import copy_atomically
from tasks.notify import enqueue
from tasks.run_lease import claimed
from tasks.uploads import names_as_sent
from tasks.workbooks import private_folder

log = logging.getLogger(__name__)

MESSAGE_ITEMS = 20  # refused files listed in one message; the rest are counted
REASON_CHARS = 300  # a system fault's reason as stored and shown


class IntakeFault(CampaignError):
    """Files waited in an inbox and the system could take none of them in: the run fails, loudly."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive(path: Path, sha: str, *folders: str) -> Path:
    """Copy a received file, unchanged, to the archive under its hash: durable (written, synced and
    renamed into place) before anyone records it; readable only by the service; made once."""
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
    """Everything waiting in an inbox folder (hidden files aside: writers' temporary files), in name
    order.

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


# ---------------------------------------------------------------- refusals: the sender's fault
def refuse_file(
    session: Session,
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
    """Keep a refused file aside (unless `keep` is off: a link or special file is never copied) and
    record why; its sender (or the province, if unknown) is told by `tell_refusals`. `name` is the
    file's name as shown, when the entry's own name is not safe text. Returns where it was kept."""
    kept = str(archive(path, sha, "rejected")) if keep else ""
    insert_ignoring_duplicates(
        session,
        IntakeRejection,
        [
            {
                "file_name": name or path.name,
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
    return kept


def refuse_entry(
    cfg: CampaignConfig, ob: Obligation, entry: InboxEntry, received_at: dt.datetime, prefix: str = ""
) -> dict[str, Any]:
    """Record an inbox entry that is not a regular file; links and special files leave the inbox (the
    entry itself, never what it points to), folders stay where they are."""
    name = safe_name(entry.path.name)
    stat = entry.path.lstat()
    identity = hashlib.sha256(f"entry|{name}|{stat.st_ino}|{stat.st_mtime_ns}".encode()).hexdigest()
    unit = identify_unit(name, list(cfg.units))
    with session_scope() as session:
        refuse_file(
            session,
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
    return {"file": f"{prefix}{name}", "refused": entry.refusal or "", "kept_at": ""}


def tell_refusals(cfg: CampaignConfig) -> int:
    """One message per sender for every refusal not yet told (this run's, and any a crashed run left):
    its files listed (the first `MESSAGE_ITEMS`, the rest counted), in the same transaction that marks
    them told. Returns how many messages were queued."""
    table = IntakeRejection.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = (
            session.execute(sa.select(table).where(table.c.told_at.is_(None)).order_by(table.c.id))
            .mappings()
            .all()
        )
        if not rows:
            return 0
        known = {u.key for u in cfg.units}
        shown = names_as_sent(session, {r["file_name"] for r in rows})  # uploads: as their senders named them
        by_recipient: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_recipient[row["unit_key"] if row["unit_key"] in known else cfg.province.key].append(row)
        decisions = []
        for key, refused in by_recipient.items():
            unit = cfg.unit(key)
            obligations = []
            if key != cfg.province.key:
                for ob_key in dict.fromkeys(r["obligation_key"] for r in refused if r["obligation_key"]):
                    ob = next((o for o in cfg.campaign.obligations if o.key == ob_key), None)
                    if ob is None:  # a sheet's folder, or another year's obligation
                        continue
                    period = period_for(
                        cfg.campaign, ob, local_date(refused[-1]["received_at"], cfg.campaign)
                    )
                    if period is not None:
                        obligations.append({"title": ob.title, "due": period.due})
            message = render(
                "rejection",
                {
                    "campaign": cfg.campaign,
                    "unit": unit,
                    "files": [
                        {"file_name": shown.get(r["file_name"], r["file_name"]), "reason": r["reason"]}
                        for r in refused[:MESSAGE_ITEMS]
                    ],
                    "total": len(refused),
                    "obligations": obligations,
                },
            )
            ids = f"{refused[0]['id']}-{refused[-1]['id']}"
            decisions.append(
                Decision(
                    key,
                    None,
                    MessageKind.rejection,
                    "",
                    outbox_key(MessageKind.rejection, cfg.campaign.year, key, ids),
                    message,
                )
            )
        enqueue(session, decisions)
        session.execute(sa.update(table).where(table.c.id.in_([r["id"] for r in rows])).values(told_at=now()))
    return len(decisions)


# ---------------------------------------------------------------- faults: the system's
def _fault_reason(exc: BaseException) -> str:
    """What went wrong, for operators: the exception's type and the driver's or system's own words —
    never a statement's SQL or parameters (the rows of a workbook, ID numbers among them) — with
    secrets taken out and any personal number left masked."""
    words = exc.orig if isinstance(exc, sa.exc.StatementError) and exc.orig is not None else exc
    text = " ".join(f"{type(exc).__name__}: {words}".split())
    return clip(mask_personal_data(redact(text, known_secret_values(get_settings()))), REASON_CHARS)


def keep_for_next_run(
    cfg: CampaignConfig, folder: str, path: Path, exc: BaseException, at: dt.datetime
) -> dict[str, Any]:
    """A file the system failed on: left in the inbox, recorded (when the database answers), and moved
    to quarantine once it has failed `quarantine_after_faults` runs. Its sender is not told."""
    reason = _fault_reason(exc)
    log.error("系统原因未能处理 %s/%s，文件留在收件箱待下次运行：%s", folder, path.name, reason)
    outcome: dict[str, Any] = {"file": f"{folder}/{path.name}", "kept": reason, "faults": None}
    try:
        sha = sha256_of(path)
        unit = identify_unit(path.name, list(cfg.units))
        table = InboxFault.__table__  # type: ignore[attr-defined]
        with session_scope() as session:
            found = session.exec(
                select(InboxFault).where(
                    InboxFault.folder == folder, InboxFault.file_name == path.name, InboxFault.sha256 == sha
                )
            ).first()
            if found is None:
                session.execute(
                    sa.insert(table).values(
                        folder=folder,
                        file_name=path.name,
                        sha256=sha,
                        unit_key=unit.key if unit else None,
                        faults=1,
                        reason=reason,
                        first_at=at,
                        last_at=at,
                        quarantined_at="",
                    )
                )
                faults = 1
            else:
                faults = found.faults + 1
                found.faults, found.reason, found.last_at = faults, reason, at
                session.add(found)
            outcome["faults"] = faults
            if faults >= cfg.campaign.intake_limits.quarantine_after_faults:
                kept = archive(path, sha, "quarantine", folder)
                session.execute(
                    sa.update(table)
                    .where(table.c.folder == folder, table.c.file_name == path.name, table.c.sha256 == sha)
                    .values(quarantined_at=str(kept))
                )
                outcome["quarantined"] = str(kept)
        if "quarantined" in outcome:
            path.unlink(missing_ok=True)  # after the record: the quarantine copy and the row hold it
            log.error(
                "%s/%s 已连续 %d 次因系统原因未能处理，已移至隔离区：%s",
                folder,
                path.name,
                faults,
                outcome["quarantined"],
            )
    except Exception as again:  # the database or the disk is what fails: the run's log still says so
        log.error("未能记录 %s/%s 的处理故障：%s", folder, path.name, _fault_reason(again))
    return outcome


def _resolved(folder: str, name: str) -> None:
    """A file taken in after earlier faults: its fault record goes."""
    table = InboxFault.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        session.execute(
            sa.delete(table).where(
                table.c.folder == folder, table.c.file_name == name, table.c.quarantined_at == ""
            )
        )


def _forget_gone(folder: str, waiting: set[str]) -> set[str]:
    """Drop the fault records of files no longer in the inbox (an operator removed them; quarantined
    ones stay); returns the names of those still waiting with a fault record."""
    table = InboxFault.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        rows = session.execute(
            sa.select(table.c.id, table.c.file_name).where(
                table.c.folder == folder, table.c.quarantined_at == ""
            )
        ).all()
        gone = [row.id for row in rows if row.file_name not in waiting]
        if gone:
            session.execute(sa.delete(table).where(table.c.id.in_(gone)))
    return {row.file_name for row in rows if row.file_name in waiting}


def open_faults(limit: int = 50) -> list[dict[str, Any]]:
    """The files the system could not take in yet (or quarantined), newest first, for operators."""
    with session_scope() as session:
        rows = session.exec(
            select(InboxFault).order_by(InboxFault.last_at.desc()).limit(limit)  # type: ignore[attr-defined]
        ).all()
        return [r.model_dump() for r in rows]


# ---------------------------------------------------------------- the loop
Handler = Callable[[Path], dict[str, Any]]
"""Takes one file in, in one transaction, and returns its summary; it refuses the sender's faults
itself (the summary then has "refused"). Whatever it raises is the system's fault."""


@dataclass
class FolderIntake:
    results: list[dict[str, Any]] = field(default_factory=list)  # the handler's summaries and refusals
    kept: list[dict[str, Any]] = field(default_factory=list)  # the system's faults: files left in place

    def refused(self) -> list[tuple[str, str]]:
        return [(r["file"], r["refused"]) for r in self.results if r.get("refused")]


def take_in_folder(
    cfg: CampaignConfig,
    ob: Obligation,
    folder: str,
    handle: Handler,
    received_at: dt.datetime,
    *,
    prefix: str = "",
) -> FolderIntake:
    """Every file waiting in `inbox/<folder>`, each on its own (see the module's docstring). `prefix`
    goes before the name of an entry refused unread, as the handler names its files."""
    out = FolderIntake()
    holder = f"inbox-{uuid.uuid4().hex[:16]}"
    entries = scan_inbox(get_settings().inbox / folder)
    failed_before = _forget_gone(folder, {e.path.name for e in entries})
    for entry in entries:
        if entry.refusal is not None:
            out.results.append(refuse_entry(cfg, ob, entry, received_at, prefix))
            continue
        claim = f"inbox:{folder}:{hashlib.sha256(entry.path.name.encode()).hexdigest()[:32]}"
        with claimed(claim, holder) as mine:
            if not mine or not entry.path.exists():  # another run or worker has it, or took it in
                continue
            try:
                summary = handle(entry.path)
            except Exception as exc:
                out.kept.append(keep_for_next_run(cfg, folder, entry.path, exc, received_at))
                continue
            entry.path.unlink(missing_ok=True)  # the archive and the database hold it now
            out.results.append(summary)
            if entry.path.name not in failed_before:
                continue
            try:
                _resolved(folder, entry.path.name)
            except Exception as exc:  # only bookkeeping: the file itself is safely in
                log.warning("未能清除 %s 的故障记录：%s", entry.path.name, _fault_reason(exc))
    return out


def fail_if_nothing_done(intakes: list[FolderIntake]) -> None:
    """After a run did everything else it could: if files waited and the system took none of them in,
    the run fails, naming them (they wait in the inbox for the next run)."""
    kept = [k for i in intakes for k in i.kept]
    done = sum(len(i.results) for i in intakes)
    if kept and not done:
        names = "、".join(k["file"] for k in kept[:5]) + ("等" if len(kept) > 5 else "")
        raise IntakeFault(
            f"{len(kept)} 个报送文件因系统原因未能处理（{names}），均留在收件箱，待下次运行：{kept[0]['kept']}"
        )
