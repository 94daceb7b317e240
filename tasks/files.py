"""Every file the campaign writes (reports, overview, charts, error workbooks, mailbox, archive, inbox)
appears whole or not at all.

One way: the content goes to a temporary name of its own in the target's folder (unique per writer, so
two runs publishing the same report never touch each other's file), is flushed to disk, and is renamed
over the target; the folder is synced so the rename itself survives a crash. When anything fails on
the way (a full disk, say) the temporary file is removed and the target is as it was. The last
complete writer wins; a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

PART = ".part"  # temporary files end so; folders that are read skip names starting with "."


def temporary_name(path: Path) -> Path:
    """A name beside `path` that no other writer uses: hidden, with this process and a random tag."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{PART}")


def sync_folder(folder: Path) -> None:
    """Make a rename or a new name in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, write: Callable[[Path], object], *, mode: int = 0o600) -> Path:
    """Write `path` through `write(temporary_path)` (anything that creates a file at the path it is
    given: `book.save`, `image.save`, `shutil.copyfile` …), then put it in place at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    sync_folder(path.parent)
    return path


def write_bytes(path: Path, data: bytes, *, mode: int = 0o600) -> Path:
    return write_atomically(path, lambda tmp: tmp.write_bytes(data), mode=mode)


def write_text(path: Path, text: str, *, mode: int = 0o600) -> Path:
    return write_bytes(path, text.encode("utf-8"), mode=mode)


def copy_atomically(source: Path, path: Path, *, mode: int = 0o600) -> Path:
    """A durable copy of `source` at `path` (the archive keeps the original's bytes unchanged)."""
    return write_atomically(path, lambda tmp: shutil.copyfile(source, tmp), mode=mode)


def made_once(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path` (0600 in a 0700 folder), written by `make()` the first time. The value
    is written whole under a temporary name and linked into place, which fails if the name exists: when
    two processes start at once the first link wins, and neither ever reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        draft = write_text(temporary_name(path), make() + "\n")
        try:
            with contextlib.suppress(FileExistsError):  # another process made it meanwhile: theirs wins
                os.link(draft, path)
        finally:
            draft.unlink()
    return path.read_text().strip()
