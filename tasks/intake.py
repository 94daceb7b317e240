"""Taking in submissions: files dropped in the inbox, and records an operator makes in the UI.

Nothing is lost: an accepted file is archived unchanged under its hash before the database records
it; a refused file is moved aside with its reason recorded and the sender told; the same file twice
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, select

from config import CampaignConfig
from config.schema import Obligation, Unit
from config.settings import get_settings
from models.clock import local_date, moment
from models.db import insert_ignoring_duplicates, session_scope
from models.deadlines import Period, days_late
from models.errors import SubmissionError
from models.messages import render
from models.planning import Decision, period_label
from models.submissions import period_for, screen
from models.tables import IntakeRejection, MessageKind, ObligationInstance, ObligationStatus, Submission
from tasks.notify import enqueue


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
    """Copy a received file, unchanged, to the archive under its hash; a second copy is not made."""
    target = get_settings().archive.joinpath(*folders) / f"{sha[:16]}-{path.name}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(path, target)
    return target


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
            Decision(a.unit.key, oid, MessageKind.receipt, "", f"receipt:{oid}:{a.dedupe_key}", message)
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
) -> str:
    """Keep the refused file aside, record why, and tell its sender (or the province, if unknown)."""
    kept = archive(path, sha, "rejected")
    added = insert_ignoring_duplicates(
        session,
        IntakeRejection,
        [
            {
                "file_name": path.name,
                "sha256": sha,
                "unit_key": unit.key if unit else None,
                "obligation_key": ob.key,
                "reason": reason,
                "kept_at": str(kept),
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
                "file_name": path.name,
                "reason": reason,
                "obligation": ob if period_due else None,
                "due": period_due,
            },
        )
        enqueue(
            session,
            [
                Decision(
                    recipient.key, None, MessageKind.rejection, "", f"rejection:{sha}:{path.name}", message
                )
            ],
        )
    return str(kept)


@task(name="take-in-inbox", description="收件箱收件", cache_policy=NO_CACHE)
def take_in_inbox(cfg: CampaignConfig, obligation_keys: list[str], today: dt.date) -> IntakeSummary:
    """Read every file waiting in the inbox folders of these obligations."""
    settings = get_settings()
    summary = IntakeSummary()
    received_at = moment(today, cfg.campaign)
    units = list(cfg.units)
    for key in obligation_keys:
        ob = cfg.campaign.obligation(key)
        folder = settings.inbox / key
        folder.mkdir(parents=True, exist_ok=True)
        files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        accepted: list[tuple[Path, Accepted]] = []
        with session_scope() as session:
            for path in files:
                sha = sha256_of(path)
                verdict = screen(
                    file_name=path.name,
                    size=path.stat().st_size,
                    campaign=cfg.campaign,
                    ob=ob,
                    units=units,
                    day=today,
                )
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
                        {"file": f"{key}/{path.name}", "reason": verdict.reason, "kept_at": kept}
                    )
                    continue
                assert verdict.unit is not None and verdict.period is not None
                archived = archive(path, sha, str(cfg.campaign.year), key, verdict.unit.key)
                accepted.append(
                    (
                        path,
                        Accepted(
                            ob,
                            verdict.unit,
                            verdict.period,
                            f"sha256:{sha}",
                            "inbox",
                            verdict.unit.name,
                            received_at,
                            path.name,
                            str(archived),
                        ),
                    )
                )
            duplicates = store_submissions(session, cfg, [a for _, a in accepted])
        for path, a in accepted:
            if a.dedupe_key in duplicates:
                summary.duplicates.append(f"{key}/{path.name}")
            else:
                summary.accepted.append(
                    {"file": f"{key}/{path.name}", "unit": a.unit.name, "period": a.period.label}
                )
        # Only after the commit: the inbox copy goes (the archive and the database both hold it now).
        for path in files:
            path.unlink(missing_ok=True)
    return summary


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
    if file_path is not None and not file_path.is_file():
        raise SubmissionError(str(file_path), "文件不存在")
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
