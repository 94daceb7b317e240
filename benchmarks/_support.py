"""Shared set-up for the benchmarks: a private working folder, config copy and SQLite database."""

from __future__ import annotations

import os
import shutil
import tempfile
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
