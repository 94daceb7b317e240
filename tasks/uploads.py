"""A file uploaded through a unit's page, put where the flows read it (tasks/inbox.py).

The bytes are streamed to a hidden spool file beside the inbox folders (flows skip hidden names) with
the size limit counted as they come, so an oversized upload is cut off, never read whole. What
the file is is judged from its bytes, not from the name the sender's device gave it; the server names
it (`<unit>-<obligation>-<receipt>.<kind>`, so the inbox knows its sender), renames it into place at
once, and records the upload (its receipt number) in the same step. The same file for the same inbox
twice is the first upload: nothing changes and the first receipt is shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session, select

from config import CampaignConfig
from config.errors import SubmissionError
from config.schema import Obligation, Unit
from config.settings import get_settings
from models.db import session_scope
from models.tables import Upload
from tasks.files import sync_folder, temporary_name
from tasks.workbooks import private_folder

CHUNK = 1 << 16


def judge_kind(head: bytes, path: Path) -> str | None:
    """What a file is, from its first bytes (and, for a zip, its members): xlsx, docx, ofd, zip, xls
    (any OLE2 document: .xls, .doc, .wps, .et), pdf, png, jpg, rar, csv (UTF-8 or GBK text); None for
    anything else (a program, an unknown binary)."""
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"Rar!\x1a\x07",)):
        return "rar"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "xls"  # an OLE2 container; the reader tells a workbook from a Word file or a locked xlsx
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as book:
                names = set(book.namelist())
        except (zipfile.BadZipFile, OSError):
            return "zip"  # damaged: the intake says so in the sender's terms
        if "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names):
            return "xlsx"
        if "[Content_Types].xml" in names and any(n.startswith("word/") for n in names):
            return "docx"
        if "OFD.xml" in names:
            return "ofd"
        return "zip"
    if head.startswith((b"MZ", b"\x7fELF", b"#!", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")):
        return None  # a program
    if b"\x00" in head[:4096]:
        return None  # binary of no kind taken (UTF-16 text included: Excel's "Unicode text")
    for encoding in ("utf-8", "gb18030"):
        try:
            head[:4096].decode(encoding)
            return "csv"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head[:4096]) - 4:  # cut in the middle of a character
                return "csv"
    return None


# What an obligation's inbox takes, by the kind of its bytes (documents: the campaign's accepted
# extensions; a sheet's inbox: workbooks and CSV).
SHEET_KINDS = ("xlsx", "xls", "csv")
DOCUMENT_KINDS = {"pdf", "docx", "xls", "xlsx", "ofd", "zip", "rar", "jpg", "png"}


@dataclass(frozen=True)
class Received:
    upload: Upload
    new: bool  # False: the same file had been uploaded before (its first receipt)


def receipt(upload: Upload) -> str:
    """The receipt number a sender quotes: year and the upload's number."""
    return f"{upload.year}-{upload.id:06d}"


def as_sent(session: Session, stored_name: str) -> str | None:
    """A file the flows take in, as its sender knows it: the name it uploaded and its receipt number;
    None for a file that did not come through a page."""
    return names_as_sent(session, {stored_name}).get(stored_name)


def names_as_sent(session: Session, stored_names: set[str]) -> dict[str, str]:
    """`as_sent` for many files at once (the ones that came through a page), in one query."""
    if not stored_names:
        return {}
    rows = session.exec(select(Upload).where(Upload.stored_name.in_(stored_names))).all()  # type: ignore[attr-defined]
    return {u.stored_name: f"{u.original_name}（回执号 {receipt(u)}）" for u in rows}


class TooLarge(SubmissionError):
    pass


class Spool:
    """An upload's bytes as they arrive, in a hidden file beside the inbox folders (the same disk, so
    it is renamed into place, never copied), counted against the size limit, hashed on the way."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.limit = int(get_settings().max_upload_mb * (1 << 20))
        folder = private_folder(get_settings().inbox / ".incoming")
        self.path = temporary_name(folder / "upload")
        self._fh = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        self._digest = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise TooLarge(
                self.name, f"文件超过 {get_settings().max_upload_mb:g} MB 的上限，请压缩或拆分后上传"
            )
        if len(self.head) < CHUNK:
            self.head += chunk[: CHUNK - len(self.head)]
        self._digest.update(chunk)
        self._fh.write(chunk)

    def finish(self) -> str:
        """Flush the bytes to disk; returns their SHA-256."""
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self._digest.hexdigest()

    def discard(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.path.unlink(missing_ok=True)


def _extension(kind: str, original_name: str, sheet: bool) -> str:
    """The stored file's extension, from its kind (an OLE2 file keeps the sender's .doc/.wps/.et)."""
    if kind == "xls":
        suffix = Path(original_name).suffix.lower().lstrip(".")
        return suffix if suffix in OLE_EXTENSIONS else ("xls" if sheet else "doc")
    return kind


OLE_EXTENSIONS = ("xls", "et", "doc", "wps")
KIND_EXTENSIONS = {"xls": OLE_EXTENSIONS}  # an OLE2 container may be any of these


def store_upload(
    cfg: CampaignConfig,
    *,
    unit: Unit,
    ob: Obligation,
    folder: str,
    sheet: bool,
    original_name: str,
    spool: Spool,
    uploaded_by: str,
    address: str,
    now: dt.datetime,
) -> Received:
    """Judge the spooled file, put it in the inbox `folder` under a name the server chooses and record
    the upload. Raises SubmissionError (the sender's fault: empty, or not a kind this obligation
    takes) before anything is kept; the spool is gone either way."""
    try:
        sha = spool.finish()
        if spool.size == 0:
            raise SubmissionError(original_name, "文件为空（0 字节），请重新选择文件")
        kind = judge_kind(spool.head, spool.path)
        accepted = {e.lower() for e in cfg.campaign.accepted_extensions}
        if sheet:
            allowed = set(SHEET_KINDS)
        else:
            allowed = {k for k in DOCUMENT_KINDS if accepted & set(KIND_EXTENSIONS.get(k, (k,)))}
        if kind is None or kind not in allowed:
            what = "不是可受理的文件类型" if kind is None else f"是 {kind.upper()} 文件"
            wanted = "Excel 表格（.xlsx）或 CSV" if sheet else "、".join(sorted(accepted))
            raise SubmissionError(
                original_name, f"{what}，此项只受理 {wanted}（按文件内容判断，与文件名无关）"
            )
        target_folder = private_folder(get_settings().inbox / folder)
        try:
            with session_scope() as session:
                found = _uploaded(session, unit.key, folder, sha)
                if found is not None:
                    return Received(found.model_copy(), new=False)
                upload = Upload(
                    year=cfg.campaign.year,
                    unit_key=unit.key,
                    obligation_key=ob.key,
                    folder=folder,
                    original_name=original_name[:200],
                    stored_name="",
                    size=spool.size,
                    sha256=sha,
                    kind=kind,
                    received_at=now,
                    uploaded_by=uploaded_by[:100],
                    address=address[:64],
                )
                session.add(upload)
                session.flush()
                assert upload.id is not None
                name = f"{unit.name}-{ob.short or ob.title[:10]}-{receipt(upload)}.{_extension(kind, original_name, sheet)}"
                upload.stored_name = name
                session.add(upload)
                # In place before the commit: a failed commit leaves a file the flows take in (as any file
                # dropped in the inbox) rather than a receipt for a file that is not there.
                os.replace(spool.path, target_folder / name)
                sync_folder(target_folder)
                session.flush()
                stored = upload.model_copy()
        except sa.exc.IntegrityError:  # the same file sent twice at once (a double click): one row won
            with session_scope() as session:
                first = _uploaded(session, unit.key, folder, sha)
                if first is None:
                    raise
                return Received(first.model_copy(), new=False)
        return Received(stored, new=True)
    finally:
        spool.discard()


def _uploaded(session: Session, unit_key: str, folder: str, sha: str) -> Upload | None:
    return session.exec(
        select(Upload).where(Upload.unit_key == unit_key, Upload.folder == folder, Upload.sha256 == sha)
    ).first()


def uploads_of(unit_key: str, year: int, limit: int = 50) -> list[Upload]:
    with session_scope() as session:
        rows = session.exec(
            select(Upload)
            .where(Upload.unit_key == unit_key, Upload.year == year)
            .order_by(Upload.id.desc())  # type: ignore[union-attr]
            .limit(limit)
        ).all()
        return [r.model_copy() for r in rows]


def count_uploads(year: int) -> int:
    table = Upload.__table__  # type: ignore[attr-defined]
    with session_scope() as session:
        return int(session.execute(sa.select(sa.func.count()).where(table.c.year == year)).scalar_one())
