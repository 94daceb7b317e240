"""Production on Prefect's own engine, as IT runs it: `prefect server start` on a fresh PostgreSQL
database, the campaign on another, `campaign deploy` to a process work pool, two `campaign worker`s.

Runs created through the API complete on both workers; a run paused for approval holds its worker while
the other takes the next run, and resumes through the API; a worker stopped mid-day leaves the next run
to the other; a day run twice sends each message once (the outbox's claim holds across workers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import _pg_admin, _pg_url, _require_pg
from tests.helpers import answer, config_copy, free_port, fresh_cli_env, recommend_on_admission
from tests.pool_data import application, write_xlsx

pytestmark = pytest.mark.postgres
AUTH = "it-admin:not-a-real-password"


def _start(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *command],
        env=env,
        cwd=cwd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def production(tmp_path: Path) -> Iterator[dict[str, Any]]:
    _require_pg()
    names = [f"campaign_it_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("prefect", "campaign")]
    for name in names:
        _pg_admin(f'CREATE DATABASE "{name}"')
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    config = recommend_on_admission(config_copy(tmp_path / "campaign-config"))  # the pool's approval step
    env = fresh_cli_env(
        tmp_path,
        PREFECT_API_DATABASE_CONNECTION_URL=_pg_url(names[0]).replace(
            "postgresql://", "postgresql+asyncpg://"
        ),
        PREFECT_SERVER_API_AUTH_STRING=AUTH,
        PREFECT_API_AUTH_STRING=AUTH,
        CAMPAIGN_CONFIG_DIR=str(config),
        CAMPAIGN_WORK_POOL="campaign-it",
        PREFECT_WORKER_QUERY_SECONDS="1",  # workers look for runs every second (default 10)
    )
    for key in [
        k for k in env if k.startswith("PREFECT_SERVER_SERVICES_") or k == "CAMPAIGN_TEST_PREFECT_HOME"
    ]:
        env.pop(key)  # the test run's own server settings are not IT's
    env["PREFECT_API_URL"] = api  # fresh_cli_env leaves both out, as a new user's shell has neither
    env["CAMPAIGN_DATABASE_URL"] = _pg_url(names[1]).replace("postgresql://", "postgresql+psycopg://")
    started: list[subprocess.Popen[bytes]] = []
    try:
        server = _start(
            ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-ui"],
            env,
            tmp_path / "server.log",
            tmp_path,
        )
        started.append(server)
        client = httpx.Client(auth=tuple(AUTH.split(":")), timeout=10)  # type: ignore[arg-type]
        deadline = time.monotonic() + 120
        while True:
            try:
                if client.get(f"{api}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        yield {"env": env, "api": api, "client": client, "root": tmp_path, "started": started, "db": names[1]}
    finally:
        for proc in reversed(started):
            _stop(proc)
        for name in names:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cli(p: dict[str, Any], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env=p["env"],
        cwd=p["root"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _run(p: dict[str, Any], deployment_id: str, today: str) -> str:
    run: dict[str, Any] = answer(  # type: ignore[assignment]
        p["client"],
        "POST",
        f"{p['api']}/deployments/{deployment_id}/create_flow_run",
        json={"parameters": {"today": today}},
    )
    return str(run["id"])


def _wait(p: dict[str, Any], run_id: str, states: tuple[str, ...], timeout: float = 150) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = p["client"].get(f"{p['api']}/flow_runs/{run_id}").json()["state"]["type"]
        if state in states:
            return str(state)
        assert state not in ("FAILED", "CRASHED"), state
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} not {states} within {timeout} s")


def _taken_by(p: dict[str, Any], run_id: str) -> list[str]:
    return [
        w for w in ("w1", "w2") if f"submitting flow run '{run_id}'" in (p["root"] / f"{w}.log").read_text()
    ]


def _online(p: dict[str, Any]) -> list[str]:
    workers = answer(p["client"], "POST", f"{p['api']}/work_pools/campaign-it/workers/filter", json={})
    return [w["name"] for w in workers if w["status"] == "ONLINE"]  # type: ignore[union-attr]


def test_two_workers_share_the_campaign_on_postgresql(production: dict[str, Any]) -> None:
    p = production
    out = _cli(p, "deploy")
    assert "已部署到工作池 campaign-it" in out and "2022年·三(一)实地调研" in out
    for name in ("w1", "w2"):  # one run at a time each, so the second run must go to the other
        worker = ["-m", "flows.cli", "worker", "--name", name, "--limit", "1"]
        p["started"].append(_start(worker, p["env"], p["root"] / f"{name}.log", p["root"]))
    deployments = {
        d["name"]: d["id"]
        for d in answer(p["client"], "POST", f"{p['api']}/deployments/filter", json={})  # type: ignore[union-attr]
    }
    june, pool = deployments["2022年·三(一)实地调研"], deployments["2022年·三(三)培育库入库"]
    deadline = time.monotonic() + 60
    while len(online := _online(p)) < 2:
        assert time.monotonic() < deadline, online
        time.sleep(0.5)
    doctor = subprocess.run(
        [sys.executable, "-m", "flows.cli", "doctor", "--today", "2022-07-04"],
        env=p["env"],
        cwd=p["root"],
        capture_output=True,
        text=True,
    ).stdout
    assert "✓ 工作池 campaign-it：在线 worker 2 个" in doctor
    assert "✓ 共享文件夹：与部署时一致" in doctor and "✓ 活动数据库：版本 0008" in doctor
    assert not (p["root"] / "var" / "campaign.db").exists()  # the campaign lives in PostgreSQL

    # The pool's run pauses for approval and holds its worker; the June run goes to the other one.
    write_xlsx(p["root"] / "var" / "inbox" / "pool_intake" / "乾安县-培育库申报表.xlsx", [application(1)])
    paused = _run(p, pool, "2022-07-04")
    _wait(p, paused, ("PAUSED",))
    first = _run(p, june, "2022-06-21")
    _wait(p, first, ("COMPLETED",))
    assert len(_taken_by(p, paused)) == 1 and len(_taken_by(p, first)) == 1
    assert _taken_by(p, paused) != _taken_by(p, first)  # spread over both workers

    schema = p["client"].get(f"{p['api']}/flow_runs/{paused}").json()["state"]["state_details"]
    assert schema["pause_reschedule"] is False  # the worker's process waits, as in `serve`
    with psycopg.connect(_pg_url(p["db"])) as db:
        [(rec_id,)] = db.execute("select id from recommendation").fetchall()
    decision = {"approver": "省就业服务局 李四", f"approve_{rec_id}": True, f"reason_{rec_id}": ""}
    answer(p["client"], "POST", f"{p['api']}/flow_runs/{paused}/resume", json={"run_input": decision})
    _wait(p, paused, ("COMPLETED",))

    # The same day again, while w1 is stopped mid-day: w2 takes it, and nobody hears twice.
    holder = p["started"][1]
    _stop(holder)
    again = _run(p, june, "2022-06-21")
    _wait(p, again, ("COMPLETED",))
    assert _taken_by(p, again) == ["w2"]
    with psycopg.connect(_pg_url(p["db"])) as db:
        kickoffs = db.execute(
            "select count(*), count(distinct unit_key) from outbox where kind = 'kickoff'"
            " and dedupe_key like '%june_survey%'"
        ).fetchone()
        status = db.execute("select status, decided_by from recommendation").fetchone()
    assert kickoffs == (70, 70)  # one per city and county, though the day ran twice on two workers
    assert status == ("approved", "省就业服务局 李四")
