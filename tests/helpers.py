"""Helpers the tests share: editing the config copy as an operator would, reading the outbox."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import yaml
from sqlmodel import select

from models.db import session_scope
from models.tables import OutboxMessage


def edit_yaml(path: Path, change: Any) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def config_copy(target: Path) -> Path:
    """A private copy of the repository's config/ data at `target` (not named `config` inside a served
    command's working folder: a folder of that name there would hide the `config` package)."""
    source = Path(__file__).resolve().parents[1] / "config"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def recommend_on_admission(config_dir: Path) -> Path:
    """The config copy as a year whose notice recommends projects straight from admission (the pool's
    approval step); 2022's notice recommends only named ones (三(三)), through the review."""
    edit_yaml(config_dir / "campaigns" / "2022.yaml", lambda d: d["pool"].update(propose_on_admission=True))
    return config_dir


# The year the bureaus' pages live in: today's (their uploads' intake runs for today).
LIVE_YEAR = dt.datetime.now(ZoneInfo("Asia/Shanghai")).year


def live_year_config(config_dir: Path, root: Path) -> int:
    """Add today's year to a config copy as `campaign new-year` writes it from 2022, its notice dated
    1 January so that an upload's intake runs on whatever day of the year this runs; the year."""
    done = subprocess.run(
        [sys.executable, "-m", "flows.cli", "new-year", str(LIVE_YEAR)],
        env=fresh_cli_env(root, CAMPAIGN_CONFIG_DIR=str(config_dir)),
        cwd=Path(__file__).resolve().parents[1],  # not `root`: a `config` folder there hides the package
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    edit_yaml(config_dir / "campaigns" / f"{LIVE_YEAR}.yaml", lambda d: d.update(starts=f"{LIVE_YEAR}-01-01"))
    return LIVE_YEAR


def set_channels(config_dir: Path, channels: dict[str, list[dict[str, str]]]) -> None:
    def change(data: dict[str, Any]) -> None:
        for unit in data["units"]:
            if unit["key"] in channels:
                unit["channels"] = channels[unit["key"]]

    edit_yaml(config_dir / "regions.yaml", change)


def set_delivery(config_dir: Path, year: int = 2022, **policy: Any) -> None:
    def change(data: dict[str, Any]) -> None:
        data["delivery"].update(policy)

    edit_yaml(config_dir / "campaigns" / f"{year}.yaml", change)


def outbox() -> list[OutboxMessage]:
    with session_scope() as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_tagged(fn: Callable[[], Any], result: dict[str, Any]) -> tuple[threading.Thread, str]:
    """Start `fn` (a flow that will pause) in a thread, its runs tagged uniquely: the Prefect server is
    shared by every test of the run, so a test finds its own paused run by the tag."""
    from prefect import tags

    tag = f"test-{uuid.uuid4().hex[:12]}"

    def run() -> None:
        with tags(tag):
            result.update(fn())

    runner = threading.Thread(target=run)
    runner.start()
    return runner, tag


def wait_for_pause(tag: str, timeout: float = 60) -> Any:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED])),
                    tags=FlowRunFilterTags(all_=[tag]),
                )
            )
            if runs:
                return runs[0]
            time.sleep(0.5)
    raise AssertionError("the flow run never paused for approval")


def fresh_cli_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment of a `campaign` command run as a new user would: its own working folder and
    Prefect home, the default SQLite database, and no Prefect server configured."""
    env = dict(
        os.environ,
        CAMPAIGN_HOME=str(root / "var"),
        PREFECT_HOME=str(root / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        **extra,
    )
    env.pop("PREFECT_API_URL", None)
    env.pop("CAMPAIGN_DATABASE_URL", None)
    return env


def authenticated(api: str, auth_file: Path, client_id: str = "test-serve") -> httpx.Client:
    """A client that signs in as the UI does: basic auth, and a CSRF token for its writes (one token per
    `client_id`: a new token for the same id replaces the old one)."""
    user, password = auth_file.read_text().strip().split(":", 1)
    client = httpx.Client(auth=(user, password), timeout=60)
    token = client.get(f"{api}/csrf-token", params={"client": client_id}).json()["token"]
    client.headers.update({"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client_id})
    return client


def answer(client: httpx.Client, method: str, url: str, **kwargs: object) -> object:
    """A request as the UI makes it; a busy server's 503 (its SQLite is locked a moment) is asked again,
    as Prefect's own client does. Anything else that is not 2xx fails the test with the server's words."""
    deadline = time.monotonic() + 30
    while True:
        response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
        if response.status_code not in (429, 502, 503) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert response.is_success, f"{method} {url}: {response.status_code} {response.text[:500]}"
    return response.json()


@contextlib.contextmanager
def campaign_served(
    root: Path, *, ahead: bool = True, **extra: str
) -> Iterator[tuple[subprocess.Popen[bytes], int, int, int]]:
    """`campaign serve` as a new user starts it (fresh_cli_env, plus `extra` settings), on free ports, for
    the life of the block: (the process, the UI/API port, the reports port, the portal's port). Its
    output goes to `root/serve.log` (a pipe nobody reads would fill and stop it)."""
    port, reports_port, portal_port = free_port(), free_port(), free_port()
    env = fresh_cli_env(root, CAMPAIGN_PORTAL_URL=f"http://127.0.0.1:{portal_port}", **extra)
    command = [
        "serve",
        "--port",
        str(port),
        "--reports-port",
        str(reports_port),
        "--portal-port",
        str(portal_port),
    ]
    with (root / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flows.cli", *command],
            env=env,
            cwd=root,
            start_new_session=True,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_ahead_of_the_other_tests if ahead else None,
        )
    try:
        yield proc, port, reports_port, portal_port
    finally:
        leftovers = descendants(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _ahead_of_the_other_tests() -> None:
    """The served stack's processes get the CPU before the rest of the suite's (the other xdist workers
    on the same two cores): what the browser test times (a run starting within 5 s of its form) is the
    product on its machine, not the product competing with a test suite. Where raising a priority is not
    allowed (not root), it stays as it is."""
    with contextlib.suppress(PermissionError):
        os.nice(-5)


def descendants(pid: int) -> set[int]:
    """Every live process under `pid` (children, their children …), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to read its status counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_as_ctrl_c(proc: subprocess.Popen[bytes]) -> float:
    """Press Ctrl-C in the terminal of `proc` (SIGINT to its process group); the seconds until it and
    every process it started have ended (at most 30)."""
    processes = descendants(proc.pid) | {proc.pid}
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    while any(alive(p) for p in processes) and time.monotonic() - started < 30:
        time.sleep(0.1)
    return time.monotonic() - started


def city_row(book: Any, sheet: str, city: str) -> dict[str, Any]:
    """One city's row of a report workbook's sheet (title rows above, headers on row 3), by header."""
    headers = [c.value for c in book[sheet][3]]
    rows = book[sheet].iter_rows(min_row=4, values_only=True)
    return next(dict(zip(headers, r, strict=True)) for r in rows if r[1] == city)
