"""Shared fixtures: a real database per test (SQLite file, or a fresh PostgreSQL database that is
dropped afterwards), an isolated working folder, and one Prefect server for the whole run."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# The tests read flow runs, states and artifacts, never the event history, automations or task-run rows:
# the Prefect servers of a test run (the run's own, `campaign serve` in test_serve) skip the services
# that would record those.
for _service in ("EVENT_PERSISTER", "TRIGGERS", "TASK_RUN_RECORDER"):
    os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{_service}_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("CAMPAIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_available() -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(PG_ADMIN_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=2):
            return True
    except OSError:
        return False


# One Prefect server for the whole run, shared by every xdist worker: started by the controlling process
# as soon as pytest is configured, so it comes up while the workers start and collect, and stopped when
# the run ends. Its database is a PostgreSQL database of its own when the server is up (quicker to
# migrate, and made for concurrent writers), else SQLite. Workers find it through PREFECT_API_URL, so
# flows run from test threads and subprocesses reach it too. Tests tell their runs apart by id or tag.
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput") or os.environ.get("CAMPAIGN_TEST_PREFECT_HOME"):
        return  # a worker, or a run started by another run's test
    import importlib.util

    # The API's address is in the environment before anything imports Prefect: Prefect's root settings
    # are read once, at its import, and a flow run in a thread of its own (the approval tests) reads
    # those. Without it a single-process run (`pytest -n 0`) would run such flows on a temporary server
    # of their own, where the test never sees them pause. (xdist's workers inherit it from here.)
    port = _free_port()
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    from flows.serve import die_with_parent

    home = Path(tempfile.mkdtemp(prefix="campaign-test-prefect-"))
    database = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    if _pg_available():
        name = f"campaign_test_prefect_{uuid.uuid4().hex[:8]}"
        _pg_admin(f'CREATE DATABASE "{name}"')
        database = _pg_url(name).replace("postgresql://", "postgresql+asyncpg://")
        config._campaign_prefect_database = name  # type: ignore[attr-defined]
    spec = importlib.util.find_spec("prefect")
    assert spec is not None and spec.origin is not None
    env = dict(
        os.environ,
        PREFECT_HOME=str(home),
        PREFECT_SERVER_DATABASE_CONNECTION_URL=database,
        PREFECT_UI_ENABLED="0",
        PREFECT__SERVER_EPHEMERAL="1",  # as Prefect's own test harness runs it
        PREFECT__SERVER_FINAL="1",
    )
    uvicorn = ["--app-dir", str(Path(spec.origin).parents[1]), "--factory", "--lifespan", "on"]
    where = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"]
    config._campaign_prefect_server = subprocess.Popen(  # type: ignore[attr-defined]
        [sys.executable, "-m", "uvicorn", *uvicorn, *where, "prefect.server.api.server:create_app"],
        env=env,
        stdout=subprocess.DEVNULL,
        preexec_fn=die_with_parent,  # a killed test run leaves no server behind
    )
    os.environ["CAMPAIGN_TEST_PREFECT_HOME"] = str(home)


def pytest_unconfigure(config: pytest.Config) -> None:
    server = getattr(config, "_campaign_prefect_server", None)
    if server is None:
        return
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
    name = getattr(config, "_campaign_prefect_database", None)
    if name:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(os.environ.pop("CAMPAIGN_TEST_PREFECT_HOME"), ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """The run's Prefect server, once it answers."""
    import httpx
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    url = os.environ["PREFECT_API_URL"]
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the test run's Prefect server at {url} did not answer within 180 s")
        time.sleep(0.3)
    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every database test runs on SQLite; those marked `also_postgres` (what is dialect-specific:
    upserts, claims, JSON, migrations, one cycle, one intake, one approval) run on PostgreSQL too."""
    if "db_url" not in metafunc.fixturenames:
        return
    postgres = pytest.param("postgresql", marks=pytest.mark.postgres)
    dialects: list[object] = ["sqlite"]
    if metafunc.definition.get_closest_marker("only_postgres"):  # what only PostgreSQL can show
        dialects = [postgres]
    elif metafunc.definition.get_closest_marker("also_postgres"):
        dialects.append(postgres)
    metafunc.parametrize("db_url", dialects, indirect=True)


def _require_pg() -> None:
    if not _pg_available():
        message = f"PostgreSQL is not reachable at {PG_ADMIN_URL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " (under CI=true a PostgreSQL test fails instead of skipping)")
        pytest.skip(message)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(sql)


def _pg_url(name: str) -> str:
    return PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + f"/{name}"


# Migrations run once per worker and dialect: each test gets a copy of a migrated database (a copied
# SQLite file; CREATE DATABASE … TEMPLATE on PostgreSQL). test_schema and test_faults still run the
# migrations from zero on both.
@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from models.db import engine_for, migrate

    path = tmp_path_factory.mktemp("migrated") / "campaign.db"
    url = f"sqlite:///{path}"
    migrate(url)
    with engine_for(url).connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine_for(url).dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    from models.db import engine_for, migrate

    _require_pg()
    name = f"campaign_template_{uuid.uuid4().hex[:12]}"
    _pg_admin(f'CREATE DATABASE "{name}"')
    try:
        migrate(_pg_url(name))
        engine_for(_pg_url(name)).dispose()  # a template must have no connections to be copied
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database of this test's own, dropped afterwards; an empty one for a test marked
    `empty_database`."""
    empty = request.node.get_closest_marker("empty_database") is not None
    if request.param == "sqlite":
        path = tmp_path / "campaign.db"
        if not empty:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
            path.chmod(0o600)
        yield f"sqlite:///{path}"
        return
    _require_pg()
    name = f"campaign_test_{uuid.uuid4().hex[:12]}"
    template = "" if empty else f' TEMPLATE "{request.getfixturevalue("migrated_postgres")}"'
    _pg_admin(f'CREATE DATABASE "{name}"{template}')
    url = _pg_url(name)
    try:
        yield url
    finally:
        from models.db import engine_for

        engine_for(url).dispose()
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """A private copy of config/, for tests that change channels or policy as an operator would."""
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


@pytest.fixture
def env(
    tmp_path: Path, db_url: str, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, object]]:
    """Settings pointing at this test's database (migrated), folders and config copy."""
    from config.settings import get_settings

    home = tmp_path / "var"
    monkeypatch.setenv("CAMPAIGN_HOME", str(home))
    monkeypatch.setenv("CAMPAIGN_DATABASE_URL", db_url)
    monkeypatch.setenv("CAMPAIGN_CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("CAMPAIGN_PACE_ROBOT_SECONDS", "0")
    for key in list(os.environ):
        if key.startswith("CAMPAIGN_SECRET_") or key == "CAMPAIGN_SMTP_URL":
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield {"home": home, "db_url": db_url, "config_dir": config_dir}
    get_settings.cache_clear()


# The longest tests (a served UI, production's workers, a year walked day by day …; each ten seconds or
# more) start first, so the workers finish together instead of one running a long test while the others
# idle. xdist's worksteal scheduler gives each worker one contiguous share of the list to start from and
# lets an idle worker take from the others: the long tests are dealt in turn to the front of each share,
# so every worker starts on long tests and ends on short ones.
LONGEST_FIRST = (
    "test_two_workers_share_the_campaign",
    "test_serve_gives_operators",
    "test_a_year_of_services_day_by_day",
    "test_june_calendar_day_by_day",
    "test_an_approval_outlasts",  # mostly idle (a paused run): started early, it overlaps the busy ones
    "test_four_deliverers_at_once",
    "test_benchmark_runs_at_a_tiny_size",
    "test_hostile_files",
    "test_kill_9_mid_batch",
    "test_approval_timeout",
    "test_pacing_per_robot",
    "test_scores_checked_ranked",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return next(
            (i for i, name in enumerate(LONGEST_FIRST) if item.name.startswith(name)), len(LONGEST_FIRST)
        )

    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    ordered = sorted(items, key=rank)
    longs = [i for i in ordered if rank(i) < len(LONGEST_FIRST)]
    shorts = ordered[len(longs) :]
    shares: list[list[pytest.Item]] = [longs[w::workers] for w in range(workers)]
    for w, share in enumerate(shares):  # fill each share up to its worker's part of the list
        size = len(items) * (w + 1) // workers - len(items) * w // workers
        take = max(size - len(share), 0) if w < workers - 1 else len(shorts)
        share += shorts[:take]
        shorts = shorts[take:]
    items[:] = [item for share in shares for item in share]
