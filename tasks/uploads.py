"""A file uploaded through a unit's page, put where the flows read it (tasks/inbox.py).

The bytes are streamed to a hidden temporary file in the target inbox folder (flows skip hidden names)
with the size limit counted as they come, so an oversized upload is cut off, never read whole. What
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import select

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


def store_upload(
    cfg: CampaignConfig,
    *,
    unit: Unit,
    ob: Obligation,
    folder: str,
    sheet: bool,
    original_name: str,
    chunks: Iterator[bytes],
    uploaded_by: str,
    address: str,
    now: dt.datetime,
) -> Received:
    """Stream `chunks` into the inbox `folder` and record the upload. Raises SubmissionError (the
    sender's fault: too large, empty, not a kind this obligation takes) before anything is kept."""
    limit = int(get_settings().max_upload_mb * (1 << 20))
    target_folder = private_folder(get_settings().inbox / folder)
    tmp = temporary_name(target_folder / "upload")
    digest = hashlib.sha256()
    size = 0
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise SubmissionError(
                        original_name, f"文件超过 {get_settings().max_upload_mb:g} MB 的上限，请压缩或拆分后上传"
                    )
                digest.update(chunk)
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        if size == 0:
            raise SubmissionError(original_name, "文件为空（0 字节），请重新选择文件")
        with tmp.open("rb") as fh:
            head = fh.read(CHUNK)
        kind = judge_kind(head, tmp)
        allowed = SHEET_KINDS if sheet else DOCUMENT_KINDS & {e.lower() for e in cfg.campaign.accepted_extensions}
        if kind is None or kind not in allowed:
            what = "不是可受理的文件类型" if kind is None else f"是 {kind.upper()} 文件"
            wanted = "Excel 表格（.xlsx）或 CSV" if sheet else "、".join(sorted(allowed))
            raise SubmissionError(original_name, f"{what}，此项只受理 {wanted}（按文件内容判断，与文件名无关）")
        sha = digest.hexdigest()
        with session_scope() as session:
            found = session.exec(
                select(Upload).where(Upload.unit_key == unit.key, Upload.folder == folder, Upload.sha256 == sha)
            ).first()
            if found is not None:
                tmp.unlink()
                return Received(found, new=False)
            upload = Upload(
                year=cfg.campaign.year,
                unit_key=unit.key,
                obligation_key=ob.key,
                folder=folder,
                original_name=original_name[:200],
                stored_name="",
                size=size,
                sha256=sha,
                kind=kind,
                received_at=now,
                uploaded_by=uploaded_by[:100],
                address=address[:64],
            )
            session.add(upload)
            session.flush()
            assert upload.id is not None
            name = f"{unit.name}-{ob.title[:20]}-{receipt(upload)}.{'xls' if kind == 'xls' and sheet else kind}"
            upload.stored_name = name
            session.add(upload)
            # In place before the commit: a failed commit leaves a file the flows take in (as a
            # drop-in from the sender) rather than a receipt for a file that is not there.
            os.replace(tmp, target_folder / name)
            sync_folder(target_folder)
        return Received(upload, new=True)
    finally:
        if tmp.exists():
            tmp.unlink()


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
