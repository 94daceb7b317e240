"""The production layout as IT runs it, for the integration test and the workers benchmark: a Prefect
server (`prefect server start` on a fresh PostgreSQL database, behind basic auth) or one given by URL,
the campaign database given by URL, `campaign deploy` to a work pool, and `campaign worker`s — every
command in its own process, with a new user's environment (`fresh_cli_env`) plus the settings below.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import answer, free_port, fresh_cli_env

AUTH = "it-admin:not-a-real-password"


@dataclass
class Stack:
    env: dict[str, str]
    api: str
    client: httpx.Client
    root: Path
    pool: str
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def cwd(self) -> Path:
        """Where commands run: a folder of their own (a `config` folder beside them would hide the
        `config` package from `python -m`)."""
        folder = self.root / "work"
        folder.mkdir(exist_ok=True)
        return folder

    def start(self, command: list[str], log: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, *command],
            env=self.env,
            cwd=self.cwd,
            stdout=(self.root / log).open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(proc)
        return proc

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "flows.cli", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def worker(self, name: str, limit: int = 1) -> subprocess.Popen[bytes]:
        """A `campaign worker` taking `limit` runs at a time; its log is `<name>.log`."""
        return self.start(["-m", "flows.cli", "worker", "--name", name, "--limit", str(limit)], f"{name}.log")

    def online(self) -> list[str]:
        workers = answer(self.client, "POST", f"{self.api}/work_pools/{self.pool}/workers/filter", json={})
        return [w["name"] for w in workers if w["status"] == "ONLINE"]  # type: ignore[union-attr]

    def wait_online(self, count: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(online := self.online()) < count:
            assert time.monotonic() < deadline, online
            time.sleep(0.5)

    def deployments(self) -> dict[str, str]:
        """Name -> id of this pool's deployments."""
        found = answer(
            self.client,
            "POST",
            f"{self.api}/deployments/filter",
            json={"work_pools": {"name": {"any_": [self.pool]}}},
        )
        return {d["name"]: d["id"] for d in found}  # type: ignore[union-attr]

    def run(self, deployment_id: str, **parameters: Any) -> str:
        run: dict[str, Any] = answer(  # type: ignore[assignment]
            self.client,
            "POST",
            f"{self.api}/deployments/{deployment_id}/create_flow_run",
            json={"parameters": parameters},
        )
        return str(run["id"])

    def state(self, run_id: str) -> str:
        return str(self.client.get(f"{self.api}/flow_runs/{run_id}").json()["state"]["type"])

    def wait(self, run_id: str, states: tuple[str, ...], timeout: float = 600) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.state(run_id)
            if state in states:
                return state
            assert state not in ("FAILED", "CRASHED"), (run_id, state)
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} not {states} within {timeout} s")

    def taken_by(self, run_id: str, workers: tuple[str, ...] = ("w1", "w2")) -> list[str]:
        """The workers that ran it. Two may try at once; the server lets one have it (the other logs
        "Aborted submission")."""
        logs = {w: (self.root / f"{w}.log").read_text() for w in workers}
        return [
            w
            for w, log in logs.items()
            if f"submitting flow run '{run_id}'" in log
            and f"Aborted submission of flow run '{run_id}'" not in log
        ]


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def production_stack(
    root: Path,
    *,
    campaign_database_url: str,
    config_dir: Path,
    server_database_url: str | None = None,
    api: str | None = None,
    pool: str | None = None,
) -> Iterator[Stack]:
    """Start a Prefect server on `server_database_url` (or use the one at `api`), for the life of the
    block; workers and commands started through the stack are stopped at its end."""
    pool = pool or f"campaign-{uuid.uuid4().hex[:6]}"
    env = fresh_cli_env(
        root,
        CAMPAIGN_CONFIG_DIR=str(config_dir),
        CAMPAIGN_WORK_POOL=pool,
        PREFECT_WORKER_QUERY_SECONDS="1",  # workers look for runs every second (default 10)
    )
    for key in [k for k in env if k.startswith("PREFECT_SERVER_SERVICES_") or k.startswith("CAMPAIGN_TEST_")]:
        env.pop(key)  # the test run's own server settings are not IT's
    env["CAMPAIGN_DATABASE_URL"] = (
        campaign_database_url  # fresh_cli_env leaves it out, as a new shell has none
    )
    own_server = api is None
    if own_server:
        assert server_database_url is not None
        api = f"http://127.0.0.1:{free_port()}/api"
        env |= {
            "PREFECT_API_DATABASE_CONNECTION_URL": server_database_url,
            "PREFECT_SERVER_API_AUTH_STRING": AUTH,
            "PREFECT_API_AUTH_STRING": AUTH,
        }
    assert api is not None
    env["PREFECT_API_URL"] = api
    auth = tuple(AUTH.split(":")) if own_server else None
    stack = Stack(env, api, httpx.Client(auth=auth, timeout=10), root, pool)  # type: ignore[arg-type]
    try:
        if own_server:
            port = api.rsplit(":", 1)[1].split("/")[0]
            server = ["-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port, "--no-ui"]
            stack.start(server, "server.log")
        deadline = time.monotonic() + 120
        while True:
            try:
                if stack.client.get(f"{api}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (root / "server.log").read_text()[-2000:]
            time.sleep(0.5)
        yield stack
    finally:
        for proc in reversed(stack.started):
            stop(proc)
        stack.client.close()
