"""No file lost, no bureau blamed for the server's faults (tasks/inbox.py): a full disk, a killed
database connection, a bug on one file and two runs at once leave every good file in the inbox or
taken in exactly once, with no refusal sent; the sender's own faults are told once per run, with what
to do about them."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from tests.helpers import outbox
from tests.pool_data import application, write_csv, write_xlsx

pytestmark = pytest.mark.usefixtures("prefect_harness")
TODAY = dt.date(2022, 7, 5)


def _pool_inbox(env: dict[str, Any]) -> Path:
    """The pool's inbox, with the hierarchy in the database (as a flow's first step leaves it)."""
    from config import load_config
    from models.db import session_scope
    from tasks.sync import sync_hierarchy

    with session_scope() as session:
        sync_hierarchy(session, load_config())
    inbox = Path(str(env["home"])) / "inbox" / "pool_intake"
    inbox.mkdir(parents=True, exist_ok=True)
    return inbox


def _workbooks(inbox: Path, files: int, rows: int, start: int = 1) -> list[str]:
    names = []
    for f in range(files):
        name = f"乾安县-培育库申报表（第{f + 1}批）.xlsx"
        first = start + f * rows
        write_xlsx(inbox / name, [application(n) for n in range(first, first + rows)])
        names.append(name)
    return names


def _stored() -> tuple[int, int, int]:
    """(applications, files taken in, refusals recorded)."""
    from models.db import session_scope
    from models.tables import IntakeFile, IntakeRejection, PoolApplication

    with session_scope() as session:
        return (
            len(session.exec(select(PoolApplication.id)).all()),
            len(session.exec(select(IntakeFile.id)).all()),
            len(session.exec(select(IntakeRejection.id)).all()),
        )


def _faults() -> list[Any]:
    from models.db import session_scope
    from models.tables import InboxFault

    with session_scope() as session:
        return [f.model_copy() for f in session.exec(select(InboxFault)).all()]


# ------------------------------------------------------------------ a full disk
@contextlib.contextmanager
def _small_filesystem(path: Path, size_kb: int) -> Iterator[Path]:
    """A tmpfs of `size_kb` at `path` (root only: a test that cannot mount one skips, under CI fails)."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0700", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        message = f"cannot mount a small tmpfs: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_archive_disk_keeps_every_workbook_and_blames_no_one(
    env: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the archive's disk full, every workbook stays in the inbox (none deleted, none refused, no
    message to its sender), each is shown to operators as kept, and the run fails saying so. Once there
    is room, the next run takes in all 20 rows."""
    from config.settings import get_settings
    from flows.pool import pool_intake

    inbox = _pool_inbox(env)
    names = _workbooks(inbox, files=4, rows=5)
    with _small_filesystem(tmp_path / "archive-disk", 64) as disk:
        monkeypatch.setenv("CAMPAIGN_ARCHIVE_DIR", str(disk))
        get_settings.cache_clear()
        with contextlib.suppress(OSError):
            (disk / "filler").write_bytes(b"\0" * (64 << 10))  # the disk is full
        state = pool_intake(today=TODAY, approve=False, return_state=True)
        assert state.is_failed()
        assert "4 个报送文件因系统原因未能处理" in str(state.message)
        assert sorted(p.name for p in inbox.iterdir()) == sorted(names)  # every workbook still waiting
        assert _stored() == (0, 0, 0)
        assert not [m for m in outbox() if m.kind in ("rejection", "intake_result")]
        faults = _faults()
        assert sorted(f.file_name for f in faults) == sorted(names)
        assert {f.faults for f in faults} == {1} and all("No space left" in f.reason for f in faults)
        assert not [p for p in disk.rglob("*.part")]  # no half-written copy left behind
        (disk / "filler").unlink()  # room again
        assert pool_intake(today=TODAY, approve=False)["files"]
    assert _stored() == (20, 4, 0)
    assert not list(inbox.iterdir()) and _faults() == []


# ------------------------------------------------------------------ the system fails on one file
def _county(n: int, county: str, code: str) -> dict[str, Any]:
    from tests.pool_data import credit_code, id_number

    return application(
        n,
        **{
            "所在县（市、区）": county,
            "统一社会信用代码": credit_code(n, code),
            "负责人身份证号": id_number(n, code),
        },
    )


def test_a_file_the_system_keeps_failing_on_is_kept_then_quarantined_never_refused(
    env: dict[str, Any],
) -> None:
    """乾安县's archive folder is broken on disk (a file where the folder should be): its workbook cannot
    be archived, so it stays in the inbox, its sender hears nothing and operators see it; 长岭县's goes
    on. After `quarantine_after_faults` (3) runs it is moved to quarantine and the runs go on without it."""
    from flows.pool import pool_intake

    home = Path(str(env["home"]))
    inbox = _pool_inbox(env)
    broken = home / "archive" / "2022" / "pool_intake" / "220723"
    broken.parent.mkdir(parents=True)
    broken.write_text("not a folder")
    write_xlsx(inbox / "乾安县-培育库申报表.xlsx", [application(n) for n in range(1, 4)])
    for run in range(1, 4):
        write_xlsx(inbox / f"长岭县-第{run}批.xlsx", [_county(10 + run, "长岭县", "220722")])
        counts = pool_intake(today=TODAY + dt.timedelta(days=run - 1), approve=False)
        assert [k["file"] for k in counts["kept"]] == ["pool_intake/乾安县-培育库申报表.xlsx"]
        assert counts["kept"][0]["faults"] == run
    [fault] = _faults()
    assert (fault.file_name, fault.faults, fault.unit_key) == ("乾安县-培育库申报表.xlsx", 3, "220723")
    assert "NotADirectoryError" in fault.reason or "FileExistsError" in fault.reason
    quarantined = Path(fault.quarantined_at)
    assert quarantined.is_file() and quarantined.is_relative_to(home / "archive" / "quarantine")
    assert sorted(p.name for p in inbox.iterdir()) == []  # moved aside after the third run
    assert _stored() == (3, 3, 0)  # 长岭县's three, no refusal
    assert not [m for m in outbox() if m.kind == "rejection"]
    assert not [m for m in outbox() if m.kind == "intake_result" and m.unit_key == "220723"]


# ------------------------------------------------------------------ the database goes away mid-store
def _terminate_when_storing(database: str, stop: threading.Event) -> list[int]:
    """Kill the session that stores rows (a COPY or INSERT into pool_application) the moment it runs."""
    import psycopg

    from tests.conftest import PG_ADMIN_URL

    killed: list[int] = []
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        while not stop.is_set() and not killed:
            rows = admin.execute(
                "select pid from pg_stat_activity where datname = %s and state = 'active' "
                "and query ilike %s and pid <> pg_backend_pid()",
                (database, "%pool_application%"),
            ).fetchall()
            for (pid,) in rows:
                admin.execute("select pg_terminate_backend(%s)", (pid,))
                killed.append(pid)
            time.sleep(0.005)
    return killed


@pytest.mark.only_postgres
def test_a_connection_killed_mid_store_keeps_the_file_and_the_next_run_takes_it_all(
    env: dict[str, Any],
) -> None:
    """The database connection dies while a 12,000-row workbook is being stored: its transaction rolls
    back whole (no partial file), the file stays in the inbox, its sender is not told; the next run
    stores every row."""
    from config import load_config
    from models.clock import moment
    from tasks.inbox import take_in_folder
    from tasks.pool import take_in_workbook

    inbox = _pool_inbox(env)
    write_csv(inbox / "乾安县-培育库申报表.csv", [application(n) for n in range(1, 12_001)], encoding="utf-8")
    cfg = load_config()
    ob = cfg.campaign.obligation("pool_intake")
    at = moment(TODAY, cfg.campaign)

    def handle(path: Path) -> dict[str, Any]:
        return take_in_workbook(cfg, path, at, chunk_rows=2_000)

    stop = threading.Event()
    database = str(env["db_url"]).rsplit("/", 1)[1]
    killer: list[int] = []
    watcher = threading.Thread(target=lambda: killer.extend(_terminate_when_storing(database, stop)))
    watcher.start()
    try:
        first = take_in_folder(cfg, ob, "pool_intake", handle, at)
    finally:
        stop.set()
        watcher.join()
    assert killer, "the storing session was never seen"
    assert [k["file"] for k in first.kept] == ["pool_intake/乾安县-培育库申报表.csv"] and first.results == []
    assert "OperationalError" in first.kept[0]["kept"] and "INSERT" not in first.kept[0]["kept"]
    assert (inbox / "乾安县-培育库申报表.csv").exists()
    assert _stored() == (0, 0, 0) and not [m for m in outbox() if m.kind == "rejection"]
    second = take_in_folder(cfg, ob, "pool_intake", handle, at)
    assert second.kept == [] and second.results[0]["admitted"] == 12_000
    assert _stored() == (12_000, 1, 0) and not list(inbox.iterdir()) and _faults() == []


# ------------------------------------------------------------------ two runs at once
@pytest.mark.also_postgres
def test_two_intakes_over_one_inbox_take_each_workbook_once(env: dict[str, Any]) -> None:
    """Two takers (two runs, two workers) over one inbox of 20 workbooks, three times over: every file
    is taken in by exactly one of them, none refused, none kept, nothing stored twice."""
    from config import load_config
    from models.clock import moment
    from tasks.inbox import take_in_folder
    from tasks.pool import take_in_workbook

    cfg = load_config()
    ob = cfg.campaign.obligation("pool_intake")
    at = moment(TODAY, cfg.campaign)
    inbox = _pool_inbox(env)
    for round_ in range(3):
        names = []
        for f in range(20):
            name = f"乾安县-第{round_}轮{f:02d}.xlsx"
            first = 1 + 1000 * round_ + 10 * f
            write_xlsx(inbox / name, [application(n) for n in range(first, first + 3)])
            names.append(name)
        results: list[Any] = [None, None]
        start = threading.Barrier(2)

        def taker(i: int, start: threading.Barrier = start, results: list[Any] = results) -> None:
            start.wait()
            results[i] = take_in_folder(cfg, ob, "pool_intake", lambda p: take_in_workbook(cfg, p, at), at)

        threads = [threading.Thread(target=taker, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        taken = [r["file"] for run in results for r in run.results]
        assert sorted(taken) == sorted(names), (results[0].kept, results[1].kept)
        assert [k for run in results for k in run.kept] == []
        assert not list(inbox.iterdir())
        assert _stored() == (60 * (round_ + 1), 20 * (round_ + 1), 0)
    assert not [m for m in outbox() if m.kind == "rejection"]


# ------------------------------------------------------------------ the sender's faults, told once
def test_odd_workbooks_are_refused_with_what_to_do(env: dict[str, Any]) -> None:
    """Excel's 'Unicode text', a truncated workbook, an empty file, a web page saved as .xls and a
    password-protected workbook: each refused with a reason that says what to do (never an exception's
    name), and 乾安县 gets one message listing all five."""
    import msoffcrypto.format.ooxml

    from flows.pool import pool_intake

    inbox = _pool_inbox(env)
    good = inbox / "plain.xlsx"
    write_xlsx(good, [application(1)])
    text = "项目名称\t申报主体名称\n肉牛养殖项目1\t合作社\n"
    (inbox / "乾安县-Unicode文本.csv").write_bytes(text.encode("utf-16"))
    (inbox / "乾安县-下载中断.xlsx").write_bytes(good.read_bytes()[:1500])
    (inbox / "乾安县-空文件.xlsx").write_bytes(b"")
    (inbox / "乾安县-网页.xls").write_bytes(b"<!DOCTYPE html><html><body><table><tr><td>x</td></tr></table>")
    encrypted = io.BytesIO()
    with good.open("rb") as fh:
        msoffcrypto.format.ooxml.OOXMLFile(fh).encrypt("秘密", encrypted)
    (inbox / "乾安县-加密.xlsx").write_bytes(encrypted.getvalue())
    good.unlink()

    counts = pool_intake(today=TODAY, approve=False)
    reasons = {f["file"]: f["refused"] for f in counts["files"]}
    assert "UTF-16" in reasons["乾安县-Unicode文本.csv"] and "CSV UTF-8" in reasons["乾安县-Unicode文本.csv"]
    assert (
        "已损坏或不完整" in reasons["乾安县-下载中断.xlsx"] and "重新导出" in reasons["乾安县-下载中断.xlsx"]
    )
    assert "文件为空" in reasons["乾安县-空文件.xlsx"]
    assert "网页（HTML）" in reasons["乾安县-网页.xls"] and "另存为 .xlsx" in reasons["乾安县-网页.xls"]
    assert "取消密码保护" in reasons["乾安县-加密.xlsx"]
    assert not any("Error" in r for r in reasons.values())
    [told] = [m for m in outbox() if m.kind == "rejection"]
    assert told.unit_key == "220723" and told.subject == "【退回】5 个报送文件未能受理"
    for name in reasons:
        assert f"“{name}”" in told.body


def test_thousands_of_odd_entries_tell_each_sender_once(env: dict[str, Any]) -> None:
    """5,000 entries a bureau's unzip left behind (links, files of a type not taken, folders), from 乾安县
    and from nobody the campaign knows: refused one by one, told in one message per sender, listing
    the first ones and counting the rest."""
    from flows.june import june_survey

    inbox = Path(str(env["home"])) / "inbox" / "june_survey"
    inbox.mkdir(parents=True)
    for n in range(3_990):
        (inbox / f"乾安县-链接{n:04d}.pdf").symlink_to("/etc/passwd")
    for n in range(10):
        (inbox / f"乾安县-附件{n:02d}.exe").write_bytes(b"MZ")
    for n in range(1_000):
        (inbox / f"未知单位-{n:04d}").mkdir()
    counts = june_survey(today=dt.date(2022, 6, 23))
    assert counts["intake"]["rejected"] == 5_000
    told = [m for m in outbox() if m.kind == "rejection"]
    assert sorted(m.unit_key for m in told) == ["220000", "220723"]
    qianan = next(m for m in told if m.unit_key == "220723")
    assert qianan.subject == "【退回】4000 个报送文件未能受理"
    assert "另有 3980 个文件未列出" in qianan.body and len(qianan.body) < 4_000
    again = june_survey(today=dt.date(2022, 6, 24))  # what is left (the folders) is not told again
    assert again["intake"]["rejected"] == 1_000 and len([m for m in outbox() if m.kind == "rejection"]) == 2


# ------------------------------------------------------------------ two writers of one report
def test_two_runs_publishing_the_overview_at_once_both_complete(env: dict[str, Any]) -> None:
    """Every dated run refreshes the overview workbook and heat map; at 09:00 ten do so at once. Each
    writes through a name of its own: all complete, and the report is a whole workbook."""
    from openpyxl import load_workbook

    from config import load_config
    from flows.june import june_survey
    from tasks.overview import publish_overview

    june_survey(today=dt.date(2022, 6, 23))  # the year's obligations, as any dated run leaves them
    cfg = load_config()
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def publish() -> None:
        start.wait()
        try:
            for _ in range(3):
                publish_overview.fn(cfg, dt.date(2022, 6, 23))
        except BaseException as exc:
            errors.append(exc)

    from prefect.logging import disable_run_logger

    with disable_run_logger():
        threads = [threading.Thread(target=publish) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    folder = Path(str(env["home"])) / "reports" / "2022" / "overview"
    assert sorted(p.name for p in folder.iterdir()) == ["2022年度全省进度一览.xlsx", "heat-map.png"]
    assert load_workbook(folder / "2022年度全省进度一览.xlsx").sheetnames == ["进度一览"]
