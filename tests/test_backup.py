"""Backup and restore: the database, the archive and the reports come back as they were, on SQLite and
on PostgreSQL; a backup of the wrong kind, or a file that is no backup, is refused with a reason."""

from __future__ import annotations

import datetime as dt
import shutil
import tarfile
from pathlib import Path

import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _status(capsys: pytest.CaptureFixture[str]) -> str:
    from flows.cli import main

    assert main(["status", "june_survey", "--today", "2022-06-24"]) == 0
    return capsys.readouterr().out


def _wipe(home: Path) -> None:
    """What losing the machine loses: the database's tables and the archive and reports folders."""
    from models.db import get_engine

    engine = get_engine()
    if engine.dialect.name == "sqlite":
        engine.dispose()
        Path(str(engine.url.database)).unlink()
    else:
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        engine.dispose()
    for folder in ("archive", "reports"):
        shutil.rmtree(home / folder)


@pytest.mark.also_postgres
def test_backup_wipe_restore_gives_back_the_same_status(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main
    from flows.june import june_survey

    home = Path(str(env["home"]))
    inbox = home / "inbox" / "june_survey"
    inbox.mkdir(parents=True)
    (inbox / "乾安县-调研报告.pdf").write_bytes(b"%PDF-1.4 survey")
    june_survey(today=dt.date(2022, 6, 24))
    before = _status(capsys)
    assert "乾安县" in before and "已报送" in before
    archived = sorted(p.relative_to(home) for p in (home / "archive").rglob("*") if p.is_file())
    assert len(archived) == 1
    (home / "reports" / "2022").mkdir(parents=True, exist_ok=True)
    (home / "reports" / "2022" / "全省进度一览.xlsx").write_bytes(b"a report")

    assert main(["backup", "--to", str(home / "backups")]) == 0
    [backup] = (home / "backups").glob("campaign-backup-*.tar.gz")
    capsys.readouterr()
    with tarfile.open(backup) as tar:  # no secret and no personal file beyond what the folders hold
        names = tar.getnames()
    assert "manifest.json" in names and not any(n.startswith("inbox") for n in names)

    _wipe(home)
    assert main(["restore", str(backup)]) == 2  # asks for --yes first, changes nothing
    assert not (home / "archive").exists()
    assert main(["restore", str(backup), "--yes"]) == 0
    capsys.readouterr()
    assert _status(capsys) == before
    assert sorted(p.relative_to(home) for p in (home / "archive").rglob("*") if p.is_file()) == archived
    assert (home / "reports" / "2022" / "全省进度一览.xlsx").read_bytes() == b"a report"


def test_a_file_that_is_no_backup_is_refused(
    env: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    fake = tmp_path / "campaign-backup-20221231-000000.tar.gz"
    fake.write_bytes(b"not a tarball")
    assert main(["restore", str(fake), "--yes"]) == 2
    assert "不是本系统的备份文件" in capsys.readouterr().err


@pytest.mark.also_postgres
def test_restore_and_one_run_lose_nothing_taken_in_after_the_backup(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """Files taken in after the snapshot are unknown to the restored database: the restore puts them
    back in their inbox (and says so), and the next run takes them in again; nothing is lost or twice."""
    from sqlmodel import select

    from flows.cli import main
    from flows.pool import pool_intake
    from models.db import session_scope
    from models.tables import IntakeFile, PoolApplication
    from tests.pool_data import application, write_xlsx

    home = Path(str(env["home"]))
    inbox = home / "inbox" / "pool_intake"
    inbox.mkdir(parents=True)
    write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(n) for n in range(1, 6)])
    pool_intake(today=dt.date(2022, 7, 5), approve=False)
    assert main(["backup", "--to", str(home / "backups")]) == 0
    [backup] = (home / "backups").glob("campaign-backup-*.tar.gz")
    # After the snapshot: four more workbooks, one of them a second file of the same name.
    for batch, (name, first) in enumerate(
        [("乾安县-第二批.xlsx", 10), ("乾安县-第三批.xlsx", 20), ("乾安县-第四批.xlsx", 30)]
    ):
        write_xlsx(inbox / name, [application(n) for n in range(first, first + 5)])
        pool_intake(today=dt.date(2022, 7, 6 + batch), approve=False)
    write_xlsx(inbox / "乾安县-第二批.xlsx", [application(n) for n in range(40, 45)])
    pool_intake(today=dt.date(2022, 7, 11), approve=False)
    assert not list(inbox.iterdir())
    capsys.readouterr()

    assert main(["restore", str(backup), "--yes"]) == 0
    told = capsys.readouterr().err
    assert "备份之后受理的 4 个文件已放回收件箱" in told
    assert len(list(inbox.iterdir())) == 4
    pool_intake(today=dt.date(2022, 7, 12), approve=False)
    with session_scope() as session:
        projects = sorted(a.project_name for a in session.exec(select(PoolApplication)).all())
        files = len(session.exec(select(IntakeFile)).all())
    assert projects == sorted(
        f"肉牛养殖项目{n}" for first in (1, 10, 20, 30, 40) for n in range(first, first + 5)
    )
    assert files == 5 and not list(inbox.iterdir())
