"""Shared set-up for the benchmarks: a private working folder, config copy and SQLite database."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def isolated_env(name: str) -> Path:
    """Point the settings at a fresh temporary folder (and config copy); returns the folder."""
    root = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    shutil.copytree(REPO / "config", root / "config", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    os.environ.update(
        CAMPAIGN_HOME=str(root / "var"),
        CAMPAIGN_CONFIG_DIR=str(root / "config"),
        CAMPAIGN_DATABASE_URL=f"sqlite:///{root / 'var' / 'campaign.db'}",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_TO_API_ENABLED="false",
    )
    from config.settings import get_settings

    get_settings.cache_clear()
    return root


def local_smtp(handler: object) -> object:
    """A real SMTP server (aiosmtpd) on a free loopback port, with CAMPAIGN_SMTP_URL pointing at it.
    Returns the started controller; call `.stop()` when done."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    os.environ["CAMPAIGN_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    from config.settings import get_settings

    get_settings.cache_clear()
    return controller


def record(
    benchmark: str,
    measure: str,
    value: float | int,
    *,
    unit: str = "",
    baseline: float | None = None,
    ratio: float | None = None,
    target: str = "",
    ok: bool | None = None,
) -> None:
    """One headline figure for the results table (benchmarks/run_all.py): appended as a JSON line to the
    file CAMPAIGN_BENCH_RESULTS names; nothing when a benchmark is run by hand."""
    import json

    path = os.environ.get("CAMPAIGN_BENCH_RESULTS")
    if not path:
        return
    row = {
        "benchmark": benchmark,
        "measure": measure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "ratio": ratio,
        "target": target,
        "ok": ok,
    }
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")


PG_ADMIN = os.environ.get("CAMPAIGN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def postgres_database(prefix: str, template: str | None = None) -> str:
    """A new PostgreSQL database on the local server, empty or a copy of the database at `template` (a
    URL; nothing may be connected to it); returns its URL. Drop it with `drop_postgres`."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(url: str) -> None:
    import psycopg

    from models.db import engine_for

    engine_for(url).dispose()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
