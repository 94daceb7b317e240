"""Taking in documents: files dropped in an obligation's inbox (through tasks/inbox.py, the one way a
file leaves an inbox), and records an operator makes in the UI.

Nothing is lost: an accepted file is archived unchanged under its hash before the database records
it; a refused file is kept aside with its reason recorded and the sender told; the same file twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from models.messages import render
from models.outbox import outbox_key
from models.planning import Decision, period_label
from models.submissions import screen
from models.tables import MessageKind, ObligationInstance, ObligationStatus, Submission
from tasks.inbox import FolderIntake, archive, refuse_file, sha256_of, take_in_folder
from tasks.notify import enqueue
from tasks.unit_of_work import task
from tasks.uploads import names_as_sent

log = logging.getLogger(__name__)


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
    # a page's upload is named in its receipt as its sender uploaded it, with its receipt number
    shown = names_as_sent(session, {a.file_name for a in items if a.file_name})
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
                "file_name": shown.get(a.file_name, a.file_name) if a.file_name else a.file_name,
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


@task(name="take-in-inbox", description="收件箱收件", cache_policy=NO_CACHE)
def take_in_inbox(cfg: CampaignConfig, obligation_keys: list[str], today: dt.date) -> list[FolderIntake]:
    """Every file waiting in the inbox folders of these obligations, each on its own
    (tasks/inbox.py): accepted, refused with a reason its sender is told, or — the system's fault —
    left in place for the next run."""
    received_at = moment(today, cfg.campaign)
    intakes = []
    for key in obligation_keys:
        ob = cfg.campaign.obligation(key)
        intakes.append(
            take_in_folder(
                cfg,
                ob,
                key,
                lambda path, ob=ob: _take_in_document(cfg, ob, path, today, received_at),
                received_at,
                prefix=f"{key}/",
            )
        )
    return intakes


def _take_in_document(
    cfg: CampaignConfig, ob: Obligation, path: Path, today: dt.date, received_at: dt.datetime
) -> dict[str, Any]:
    """One file, one transaction: accepted (archived, recorded, a receipt queued), a duplicate, or
    refused with the reason `screen` gives."""
    verdict = screen(
        file_name=path.name,
        size=path.stat().st_size,
        campaign=cfg.campaign,
        ob=ob,
        units=list(cfg.units),
        day=today,
    )
    sha = sha256_of(path)
    shown = f"{ob.key}/{path.name}"
    with session_scope() as session:
        if not verdict.accepted:
            assert verdict.reason is not None
            kept = refuse_file(
                session,
                path=path,
                sha=sha,
                ob=ob,
                unit=verdict.unit,
                reason=verdict.reason,
                received_at=received_at,
            )
            return {"file": shown, "refused": verdict.reason, "kept_at": kept}
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
            return {"file": shown, "duplicate": True}
        return {"file": shown, "unit": verdict.unit.name, "period": verdict.period.label}


def document_counts(intakes: list[FolderIntake]) -> dict[str, int]:
    """A files-only intake's counts, as the run's summary and audit show them."""
    results = [r for i in intakes for r in i.results]
    counts = {
        "accepted": sum(1 for r in results if "unit" in r),
        "duplicates": sum(1 for r in results if r.get("duplicate")),
        "rejected": sum(1 for r in results if r.get("refused")),
    }
    kept = sum(len(i.kept) for i in intakes)
    return counts | {"kept": kept} if kept else counts


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
