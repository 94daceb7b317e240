"""Production on Prefect's own engine, as IT runs it: `prefect server start` on a fresh PostgreSQL
database, the campaign on another, `campaign deploy` to a process work pool, two `campaign worker`s.

Runs created through the API complete on both workers; a run paused for approval holds its worker while
the other takes the next run, and resumes through the API; a worker stopped mid-day leaves the next run
to the other; a day run twice sends each message once (the outbox's claim holds across workers).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import _pg_admin, _pg_url, _require_pg
from tests.helpers import config_copy, recommend_on_admission
from tests.pool_data import application, write_xlsx
from tests.production_stack import Stack, production_stack, stop

pytestmark = pytest.mark.postgres


@pytest.fixture
def production(tmp_path: Path) -> Iterator[Stack]:
    _require_pg()
    names = [f"campaign_it_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("prefect", "campaign")]
    for name in names:
        _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        with production_stack(
            tmp_path,
            server_database_url=_pg_url(names[0]).replace("postgresql://", "postgresql+asyncpg://"),
            campaign_database_url=_pg_url(names[1]).replace("postgresql://", "postgresql+psycopg://"),
            config_dir=recommend_on_admission(config_copy(tmp_path / "campaign-config")),  # pool approval
            pool="campaign-it",
        ) as stack:
            stack.env["CAMPAIGN_TEST_DB"] = names[1]
            yield stack
    finally:
        for name in names:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_workers_share_the_campaign_on_postgresql(production: Stack) -> None:
    p = production
    out = p.cli("deploy")
    assert "已部署到工作池 campaign-it" in out and "2022年·01 三(一)实地调研" in out
    for name in ("w1", "w2"):  # one run at a time each, so the second run must go to the other
        p.worker(name, limit=1)
    deployments = p.deployments()
    june, pool = deployments["2022年·01 三(一)实地调研"], deployments["2022年·03 三(三)培育库入库"]
    p.wait_online(2)
    doctor = subprocess.run(
        [sys.executable, "-m", "flows.cli", "doctor", "--today", "2022-07-04"],
        env=p.env,
        cwd=p.cwd,
        capture_output=True,
        text=True,
    ).stdout
    assert "✓ 工作池 campaign-it：在线 worker 2 个" in doctor
    assert "✓ 共享文件夹：与部署时一致" in doctor and "✓ 活动数据库：版本 0012" in doctor
    assert not (p.root / "var" / "campaign.db").exists()  # the campaign lives in PostgreSQL
    assert "共享文件夹：与部署时一致" in p.cli("check")  # what each worker machine can ask

    # The pool's run pauses for approval and holds its worker; the June run goes to the other one.
    write_xlsx(p.root / "var" / "inbox" / "pool_intake" / "乾安县-培育库申报表.xlsx", [application(1)])
    paused = p.run(pool, today="2022-07-04")
    p.wait(paused, ("PAUSED",))
    first = p.run(june, today="2022-06-21")
    p.wait(first, ("COMPLETED",))
    assert len(p.taken_by(paused)) == 1 and len(p.taken_by(first)) == 1
    assert p.taken_by(paused) != p.taken_by(first)  # spread over both workers
    [runner] = p.taken_by(first)
    logged = (p.root / f"{runner}.log").read_text()
    assert (
        f"Flow run '三(一)实地调研·2022-06-21' [{first}] - 三(一)实地调研 2022-06-21 办理完毕" in logged
    )  # the run id

    details = p.client.get(f"{p.api}/flow_runs/{paused}").json()["state"]["state_details"]
    assert details["pause_reschedule"] is False  # the worker's process waits, as in `serve`
    database = _pg_url(p.env["CAMPAIGN_TEST_DB"])
    with psycopg.connect(database) as db:
        [(rec_id,)] = db.execute("select id from recommendation").fetchall()
    decision = {"approver": "省就业服务局 李四", f"approve_{rec_id}": True, f"reason_{rec_id}": ""}
    p.client.post(f"{p.api}/flow_runs/{paused}/resume", json={"run_input": decision}).raise_for_status()
    p.wait(paused, ("COMPLETED",))

    # The same day again, while w1 is stopped mid-day: w2 takes it, and nobody hears twice.
    stop(p.started[1])  # w1 (after the server)
    again = p.run(june, today="2022-06-21")
    p.wait(again, ("COMPLETED",))
    assert p.taken_by(again) == ["w2"]
    with psycopg.connect(database) as db:
        kickoffs = db.execute(
            "select count(*), count(distinct unit_key) from outbox where kind = 'kickoff'"
            " and dedupe_key like '%june_survey%'"
        ).fetchone()
        status = db.execute("select status, decided_by from recommendation").fetchone()
        sent = db.execute("select count(*) from outbox where status = 'sent'").fetchone()
    assert kickoffs == (70, 70)  # one per city and county, though the day ran twice on two workers
    delivered = list((p.root / "var" / "mailbox").rglob("*.txt"))
    assert sent is not None and len(delivered) == sent[0]  # each message delivered once, by one worker
    assert status == ("approved", "省就业服务局 李四")


@pytest.mark.usefixtures("prefect_harness")
def test_deploy_marks_the_shared_folders_and_a_worker_machine_checks_them(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Folders left marked by an earlier server are re-marked by deploy, not left to refuse every worker;
    a folder this machine sees with another marker (another share) is named."""
    from prefect.variables import Variable

    from flows.production import MARKER_FILE, folders_seen, mark_folders, marker_variable

    monkeypatch.setenv("CAMPAIGN_WORK_POOL", f"marker-test-{uuid.uuid4().hex[:6]}")  # its own record

    home = Path(str(env["home"]))
    (home / "inbox").mkdir(parents=True)
    (home / "inbox" / MARKER_FILE).write_text("an-earlier-server", encoding="utf-8")
    marker = mark_folders()
    assert marker == "an-earlier-server" and folders_seen() == []
    (home / "reports" / MARKER_FILE).write_text("another-share", encoding="utf-8")
    assert folders_seen() == [f"{home / 'reports'} 不是部署时的共享文件夹（标记不同）"]
    Variable.unset(marker_variable())
