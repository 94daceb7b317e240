"""Backup and restore of what the campaign owns: its database, the archive of every file received, and
the reports folder — one dated `.tar.gz` that IT can keep elsewhere and restore on a new machine.

- SQLite: SQLite's online backup API (a consistent copy while flows run).
- PostgreSQL: `pg_dump --format=custom` and `pg_restore --clean`; the password goes to the tools by
  `PGPASSWORD`, never on a command line or into the backup's manifest.
- The inbox is not backed up: what waits there has not been taken in yet (and is still with its sender).
- A restore puts every file taken in after the backup back in its inbox folder (the restored database
  does not know it), so the next run takes it in again: restore + one run loses nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from config.settings import Settings, get_settings

FORMAT = 1
MANIFEST = "manifest.json"
FOLDERS = ("archive", "reports")


class BackupError(Exception):
    """A backup or restore that cannot proceed, with the reason in words."""


def _pg_command(url: URL) -> tuple[list[str], dict[str, str]]:
    """libpq connection options for pg_dump/pg_restore, and the environment holding the password."""
    args = ["--dbname", str(url.database)]
    if url.host:
        args += ["--host", url.host]
    if url.port:
        args += ["--port", str(url.port)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:  # the tools' own message; it never holds the password (PGPASSWORD)
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[-500:]}")


def _folder(settings: Settings, name: str) -> Path:
    path: Path = getattr(settings, name)
    return path


def _revision(db_url: str) -> str | None:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("select version_num from alembic_version")).scalar()
    except sa.exc.SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def backup(target_dir: Path, now: dt.datetime) -> Path:
    """Write `campaign-backup-YYYYmmdd-HHMMSS.tar.gz` into `target_dir`; returns its path."""
    settings = get_settings()
    url = make_url(settings.db_url)
    target_dir.mkdir(parents=True, exist_ok=True)
    final = target_dir / f"campaign-backup-{now:%Y%m%d-%H%M%S}.tar.gz"
    with tempfile.TemporaryDirectory(prefix="campaign-backup-") as tmp:
        if url.get_backend_name() == "sqlite":
            dump = Path(tmp) / "campaign.sqlite"
            source = sqlite3.connect(str(url.database))
            try:
                with sqlite3.connect(dump) as copy:
                    source.backup(copy)
            finally:
                source.close()
        elif url.get_backend_name() == "postgresql":
            dump = Path(tmp) / "campaign.pgdump"
            args, env = _pg_command(url)
            _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(dump), *args], env)
        else:
            raise BackupError(f"cannot back up a {url.get_backend_name()} database")
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "database": url.get_backend_name(),
            "revision": _revision(settings.db_url),
            "dump": dump.name,
            "folders": [name for name in FOLDERS if _folder(settings, name).is_dir()],
        }
        (Path(tmp) / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8"
        )
        partial = final.with_name(final.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(Path(tmp) / MANIFEST, arcname=MANIFEST)
            tar.add(dump, arcname=dump.name)
            for name in manifest["folders"]:
                tar.add(_folder(settings, name), arcname=name)
        partial.replace(final)  # a backup file is either whole or absent
    return final


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        with tarfile.open(path, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            if member is None:
                raise KeyError(MANIFEST)
            manifest: dict[str, Any] = json.loads(member.read())
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"{path.name} 不是本系统的备份文件（{type(exc).__name__}）") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path.name} 的格式 {manifest.get('format')} 不受支持")
    return manifest


def restore(path: Path) -> dict[str, Any]:
    """Replace the database and the archive and reports folders with the backup's. The folders being
    replaced are kept beside them (`<folder>.before-restore-<time>`) until IT removes them."""
    settings = get_settings()
    manifest = read_manifest(path)
    url = make_url(settings.db_url)
    if manifest["database"] != url.get_backend_name():
        raise BackupError(
            f"备份来自 {manifest['database']} 数据库，当前配置的是 {url.get_backend_name()}：请先配置同类数据库"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(prefix="campaign-restore-") as tmp:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(tmp, filter="data")  # no absolute paths, no escaping the folder, no devices
        dump = Path(tmp) / manifest["dump"]
        if url.get_backend_name() == "sqlite":
            from models.db import get_engine

            get_engine().dispose()  # no pooled connection may keep the old pages
            Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
            source = sqlite3.connect(dump)
            try:
                with sqlite3.connect(str(url.database)) as target:
                    source.backup(target)
            finally:
                source.close()
        else:
            args, env = _pg_command(url)
            _run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    *args,
                    str(dump),
                ],
                env,
            )
        replaced: dict[str, Path] = {}
        for name in FOLDERS:
            current = _folder(settings, name)
            if current.exists():
                replaced[name] = current.with_name(f"{current.name}.before-restore-{stamp}")
                current.rename(replaced[name])
            if name in manifest["folders"]:
                current.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(Path(tmp) / name), current)
    requeued = []
    if "archive" in replaced:
        requeued = _requeue_later_files(replaced["archive"], settings.archive, settings.inbox)
    return {
        "restored": path.name,
        "created_at": manifest["created_at"],
        "revision": manifest["revision"],
        "requeued": requeued,
    }


def _requeue_later_files(before: Path, restored: Path, inbox: Path) -> list[str]:
    """Files taken in after the snapshot are in the archive being replaced but not in the backup's, and
    the restored database knows nothing of them: each goes back to the inbox folder it came from, under
    the name its sender gave it, and the next run takes it in again. Refused and quarantined files
    (whose senders were told, or which wait for an operator) are left in the kept-aside archive.
    Returns the inbox paths, for `campaign restore` to list."""
    from tasks.files import copy_atomically

    out = []
    for file in sorted(before.rglob("*"), key=lambda p: (p.stat().st_mtime_ns, str(p))):
        relative = file.relative_to(before)
        # archive/<year>/<inbox folder>/<unit>/<sha16>-<name>: what was accepted in a year
        if not file.is_file() or len(relative.parts) != 4 or not relative.parts[0].isdigit():
            continue
        if (restored / relative).exists():
            continue
        folder, original = relative.parts[1], relative.name.split("-", 1)[-1]
        target = inbox / folder / original
        if target.exists():  # the sender sent two files of one name: both come back
            target = target.with_name(f"{target.stem}（{relative.name[:8]}）{target.suffix}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        copy_atomically(file, target)
        out.append(str(target))
    return out
