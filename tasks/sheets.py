"""The one way a submitted workbook is taken in: pool applications, visit, training, fund and posting records.

What differs between them is declared in a `SheetIntake` (the sheet's columns, the context its checks
need, how good rows are stored); what they share is here:

- the same file twice (same hash) changes nothing and sends nothing;
- the file is archived unchanged under its hash, with an `intake_file` record, before rows are stored;
- good rows are stored even when others fail, new ones inserted and changed ones updated, by the
  sheet's identity, so a corrected resubmission updates instead of duplicating;
- bad rows go back to the sender as an error workbook (original columns, masked, + 错误说明)
  attached to the result message, which lists every count and the first errors;
- a file that cannot be read at all (no sender, no header, missing columns, no rows, a broken CSV
  line, a damaged or encrypted workbook) is kept aside and its sender is told why; its transaction
  rolls back, so nothing of it stays;
- a failure that is not the file's (the database, the disk, a bug) is raised: the file stays in its
  inbox for the next run (tasks/inbox.py) and its sender hears nothing.

One transaction per workbook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from prefect.cache_policies import NO_CACHE
from sqlmodel import Session, SQLModel, select

from config import CampaignConfig
from config.errors import ConfigError, ConfigProblem, SubmissionError
from config.schema import Unit
from config.settings import get_settings
from models.clock import local_date
from models.db import one_of, session_scope, upsert
from models.messages import clip, render
from models.outbox import outbox_key
from models.planning import Decision
from models.privacy import mask_personal_data
from models.sheets import CheckContext, Sheet, check_sheet
from models.submissions import identify_unit
from models.tables import IntakeFile, MessageKind
from models.workbook import CHUNK_ROWS, ROW, read_table
from tasks.files import write_bytes
from tasks.inbox import FolderIntake, archive, refuse_file, sha256_of, take_in_folder
from tasks.notify import enqueue
from tasks.unit_of_work import task
from tasks.uploads import as_sent
from tasks.workbooks import write_error_workbook

MESSAGE_ITEMS = 20  # errors / notes listed in a message; the error workbook has all of them


@dataclass(frozen=True)
class StoreRequest:
    """Checked good rows of one chunk, and where they came from."""

    cfg: CampaignConfig
    rows: pd.DataFrame  # typed columns and _row
    ctx: CheckContext
    file_id: int
    sender: Unit
    received_at: dt.datetime
    rejected: int = 0  # rows of the same chunk refused (a sheet meant as a whole list needs to know)


@dataclass
class Stored:
    counts: dict[str, int]  # keys of SheetIntake.count_labels
    notes: list[dict[str, Any]] = field(default_factory=list)  # {"row", "subject", "note"}: the first few
    noted: int = 0  # how many rows deserve a note (the message lists only the first few)
    decisions: list[Decision] = field(default_factory=list)  # further messages (e.g. a diversion alert)


ContextFn = Callable[[Session, CampaignConfig, Unit, dt.date], CheckContext]
StoreFn = Callable[[Session, StoreRequest], Stored]


@dataclass(frozen=True)
class SheetIntake:
    sheet: Sheet
    obligation_key: str  # the inbox folder, the archive folder, and whose refusals these are
    topic: str  # the messages' subject prefix: 【培育库】, 【包保走访】
    count_labels: tuple[tuple[str, str], ...]  # ("new", "新登记") … in the message's order
    context: ContextFn
    store: StoreFn
    notes_title: str = ""  # heading of Stored.notes in the message
    resubmit_hint: str = ""  # how a corrected resubmission is matched
    folder: str = ""  # the inbox folder and the intake_file kind; default: the obligation key
    serves: tuple[str, ...] = ()  # further obligations whose records come in the same sheet

    @property
    def obligations(self) -> tuple[str, ...]:
        """Every obligation whose records this sheet carries."""
        return (self.obligation_key, *(k for k in self.serves if k != self.obligation_key))

    @property
    def kind(self) -> str:
        return self.folder or self.obligation_key


def empty_summary(path: Path) -> dict[str, Any]:
    return {
        "file": path.name,
        "unit": None,
        "rows_read": 0,
        "rejected": 0,
        "errors": [],
        "warnings": [],
        "error_workbook": None,
    }


def brief(summary: dict[str, Any], items: int = MESSAGE_ITEMS) -> dict[str, Any]:
    """A workbook's summary for the run's record: counts, and only the first errors and warnings."""
    short = dict(summary)
    for key in ("errors", "warnings"):  # an inbox entry refused unread has none
        short[f"{key}_total"] = len(summary.get(key, []))
        short[key] = summary.get(key, [])[:items]
    return short


def _issue_records(frame: pd.DataFrame, echo_chars: int) -> list[dict[str, Any]]:
    """Errors or warnings as the sender reads them (and as they are stored for its page): a value is
    quoted back with its ID-card and phone numbers masked, cut to `echo_chars`."""
    ordered = frame.sort_values(ROW, kind="stable")
    return [
        {
            "row": int(r[ROW]),
            "column": r["列"],
            "value": clip(mask_personal_data(str(r["值"])), echo_chars),
            "reason": r["原因"],
        }
        for r in ordered.to_dict("records")
    ]


def upsert_changed(
    session: Session,
    model: type[SQLModel],
    frame: pd.DataFrame,
    *,
    identity: list[str],
    fields: list[str],
    scope: dict[str, Any],
    constants: dict[str, Any],
    insert_only: dict[str, Any] | None = None,
) -> tuple[dict[str, int], pd.DataFrame]:
    """Insert new records, update changed ones, leave identical ones alone. Set-based.

    `identity` + `scope` (e.g. the year) make a record's unique key; `fields` are what is compared
    (through a content hash) and written, with `constants`; `insert_only` values are written only
    when a record is new (e.g. when it was first received). Returns counts {new, updated, duplicates} and the rows
    written, with `is_new` and `source_row`.
    """
    frame = frame[[*dict.fromkeys([*identity, *fields]), ROW]].copy()
    frame["content_hash"] = pd.util.hash_pandas_object(frame[fields], index=False).astype(str)
    table = model.__table__  # type: ignore[attr-defined]
    first = identity[0]
    query = sa.select(*(table.c[k] for k in identity), table.c.content_hash).where(
        *(table.c[k] == v for k, v in scope.items()),
        one_of(table.c[first], frame[first].unique().tolist(), session.get_bind().dialect.name),
    )
    stored = pd.DataFrame(session.execute(query).all(), columns=[*identity, "old_hash"])
    merged = frame.merge(stored, on=identity, how="left")
    new = merged["old_hash"].isna()
    changed = ~new & (merged["old_hash"] != merged["content_hash"])
    counts = {
        "new": int(new.sum()),
        "updated": int(changed.sum()),
        "duplicates": int((~new & ~changed).sum()),
    }
    write = merged[new | changed].drop(columns=["old_hash"]).rename(columns={ROW: "source_row"})
    write["is_new"] = new[new | changed].to_numpy()
    if write.empty:
        return counts, write
    refreshed = [*fields, "content_hash", "source_row", *constants]
    upsert(
        session,
        model,
        write.drop(columns=["is_new"]),
        unique=[*scope, *identity],
        update=[k for k in dict.fromkeys(refreshed) if k not in identity],
        constants=scope | constants | (insert_only or {}),
        unless_equal="content_hash",
        new=write["is_new"].tolist(),
    )
    return counts, write


def take_in_sheet(
    cfg: CampaignConfig,
    intake: SheetIntake,
    path: Path,
    received_at: dt.datetime,
    *,
    sender: Unit | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Take one workbook in; returns the summary its sender is told (also the CLI's JSON)."""
    summary = empty_summary(path) | {k: 0 for k, _ in intake.count_labels}
    sender = sender or identify_unit(path.name, list(cfg.units))
    summary["unit"] = sender.key if sender else None
    _headers(cfg, intake.sheet, intake.kind)  # a broken import mapping stops the run, refusing no file
    # The file's faults end in a refusal its sender is told (inside); the system's propagate: the
    # caller keeps the file for the next run (tasks/inbox.py) or reports the error (the CLI).
    return _take_in_sheet(cfg, intake, path, received_at, sender, summary, chunk_rows)


def _headers(cfg: CampaignConfig, sheet: Sheet, key: str) -> dict[str, str]:
    """The headers a `key` sheet is recognised by: the template's, and a configured export's aliases.
    A mapping naming a column the sheet does not have is a config error, before any file is read."""
    mapping = cfg.campaign.imports.get(key)
    if mapping is None:
        return sheet.expected_headers
    try:
        sheet.with_codes(pd.DataFrame(), mapping.values)
        return sheet.headers_with(mapping.headers)
    except KeyError as exc:
        problem = ConfigProblem(f"imports.{key}", f"{sheet.title}没有“{exc.args[0]}”列")
        raise ConfigError(f"campaigns/{cfg.campaign.year}.yaml", [problem]) from None


def _take_in_sheet(
    cfg: CampaignConfig,
    intake: SheetIntake,
    path: Path,
    received_at: dt.datetime,
    sender: Unit | None,
    summary: dict[str, Any],
    chunk_rows: int,
) -> dict[str, Any]:
    sheet = intake.sheet
    year = cfg.campaign.year
    key = intake.kind
    ob = cfg.campaign.obligation(intake.obligation_key)
    limits = cfg.campaign.intake_limits
    expected = _headers(cfg, sheet, key)  # a broken mapping is the config's fault, not the file's
    mapping = cfg.campaign.imports.get(key)
    sha = sha256_of(path)
    try:
        with session_scope() as session:
            seen = session.exec(
                select(IntakeFile).where(IntakeFile.obligation_key == key, IntakeFile.sha256 == sha)
            ).first()
            if seen is not None:
                rows = int(seen.counts.get("rows_read", 0))
                return summary | {
                    "unit": seen.unit_key,
                    "duplicate_file": True,
                    "first_received_at": seen.received_at.astimezone(
                        ZoneInfo(cfg.campaign.timezone)
                    ).isoformat(),
                    "rows_read": rows,
                    "duplicates": rows - int(seen.counts.get("rejected", 0)),
                }
            if sender is None:
                raise SubmissionError(
                    path.name,
                    f"无法从文件名识别报送单位：文件名须以单位名称或行政区划代码开头，如“{sheet.example_file}”",
                )
            table, chunks = read_table(path, expected, limits=limits, chunk_rows=chunk_rows)
            missing = sheet.missing_required(table.columns)
            if missing:
                raise SubmissionError(
                    path.name, f"缺少必填列：{'、'.join(missing)}（请使用发布的{sheet.title}模板）"
                )
            archived = archive(path, sha, str(year), key, sender.key)
            record = IntakeFile(
                year=year,
                obligation_key=key,
                sha256=sha,
                file_name=path.name,
                unit_key=sender.key,
                received_at=received_at,
                archived_path=str(archived),
            )
            session.add(record)
            session.flush()
            assert record.id is not None
            ctx = intake.context(session, cfg, sender, local_date(received_at, cfg.campaign))
            bad_rows, errors, warnings, notes, decisions = [], [], [], [], []
            noted = 0
            for chunk in chunks:
                if mapping is not None and mapping.values:
                    chunk = sheet.with_codes(chunk, mapping.values)
                checked = check_sheet(chunk, sheet, ctx)
                summary["rows_read"] += len(chunk)
                summary["rejected"] += len(checked.bad)
                summary["duplicates"] = summary.get("duplicates", 0) + checked.repeats
                errors.append(checked.errors)
                warnings.append(checked.warnings)
                if not checked.bad.empty:
                    bad_rows.append(checked.bad)
                if checked.good.empty:
                    continue
                stored = intake.store(
                    session,
                    StoreRequest(cfg, checked.good, ctx, record.id, sender, received_at, len(checked.bad)),
                )
                for name, n in stored.counts.items():
                    summary[name] = summary.get(name, 0) + n
                notes += stored.notes[: max(0, MESSAGE_ITEMS - len(notes))]
                noted += stored.noted
                decisions += stored.decisions
            if summary["rows_read"] == 0:
                raise SubmissionError(path.name, "表中没有数据行（表头以下为空）")
            all_errors = pd.concat(errors, ignore_index=True)
            summary["errors"] = _issue_records(all_errors, limits.echo_chars)
            summary["warnings"] = _issue_records(pd.concat(warnings, ignore_index=True), limits.echo_chars)
            if bad_rows:
                target = (
                    get_settings().reports
                    / str(year)
                    / key
                    / sender.key
                    / f"{sha[:12]}-{path.stem}-错误清单.xlsx"
                )
                write_error_workbook(
                    target, sheet, pd.concat(bad_rows, ignore_index=True), all_errors, limits.echo_chars
                )
                summary["error_workbook"] = str(target)
                record.error_workbook = str(target)
            counted = {k: summary[k] for k in ("rows_read", *(k for k, _ in intake.count_labels), "rejected")}
            record.counts = counted
            record.errors = summary["errors"][:MESSAGE_ITEMS]  # what its sender's page lists
            session.add(record)
            message = render(
                "intake_result",
                {
                    "campaign": cfg.campaign,
                    "unit": sender,
                    "topic": intake.topic,
                    "sheet_title": sheet.title,
                    "file_name": as_sent(session, path.name) or path.name,
                    "received_at": received_at,
                    "counts": counted,
                    "count_items": [(label, counted[k]) for k, label in intake.count_labels],
                    "notes_title": intake.notes_title,
                    "notes": notes,
                    "notes_more": max(0, noted - len(notes)),
                    "errors": summary["errors"][:MESSAGE_ITEMS],
                    "errors_more": max(0, len(all_errors) - MESSAGE_ITEMS),
                    "warnings": summary["warnings"][:MESSAGE_ITEMS],
                    "resubmit_hint": intake.resubmit_hint,
                    "attachment_name": Path(summary["error_workbook"]).name
                    if summary["error_workbook"]
                    else None,
                },
            )
            result = Decision(
                sender.key,
                None,
                MessageKind.intake_result,
                "",
                outbox_key(MessageKind.intake_result, cfg.campaign.year, key, sha),
                message,
                summary["error_workbook"],
            )
            enqueue(session, [result, *decisions])
    except SubmissionError as exc:
        # The file could not be read (here or part-way through): its transaction rolled back, so
        # nothing of it is kept but the file itself, set aside with the reason; the sender is told.
        with session_scope() as session:
            kept = refuse_file(
                session,
                path=path,
                sha=sha,
                ob=ob,
                unit=sender,
                reason=exc.reason,
                received_at=received_at,
            )
        return empty_summary(path) | {"unit": summary["unit"], "refused": exc.reason, "kept_at": kept}
    return summary


@task(name="take-in-sheets", description="收取并校验报送的表格", cache_policy=NO_CACHE)
def take_in_sheets(cfg: CampaignConfig, intake: SheetIntake, received_at: dt.datetime) -> FolderIntake:
    """Every workbook waiting in the intake's inbox folder, one transaction each (tasks/inbox.py: the
    file leaves the inbox only after its outcome committed; the system's faults leave it in place)."""
    ob = cfg.campaign.obligation(intake.obligation_key)
    return take_in_folder(
        cfg, ob, intake.kind, lambda path: take_in_sheet(cfg, intake, path, received_at), received_at
    )


def sheet_from_form(folder: Path, sender: Unit, sheet: Sheet, rows: list[dict[str, str]]) -> Path:
    """An operator's form entries, written as the sheet a bureau would have sent (UTF-8 CSV).

    Forms are read like every other submission — one reader, one set of checks, one archive — and
    the file is named after its content, so the same entries submitted twice are recognised.
    """
    headers = [c.header for c in sheet.columns]
    frame = pd.DataFrame([{h: row.get(h, "") for h in headers} for row in rows], columns=headers)
    data = frame.to_csv(index=False).encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = folder / f"{sender.key}-{sheet.title}-表单-{digest}.csv"
    return write_bytes(path, data)  # the inbox's reader never sees half a form
