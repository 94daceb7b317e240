"""Each benchmark once at a tiny size, so none can rot between the times someone runs `make bench`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_delivery_concurrency_benchmark_runs_and_finds_no_duplicates() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_", "PREFECT_API_URL"))}
    done = subprocess.run(
        [sys.executable, "benchmarks/delivery_concurrency.py", "--messages", "20", "--deliverers", "1", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "duplicates and losses: none" in done.stdout
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [(r[0], r[1], r[2], r[3]) for r in rows[1:]] == [("1", "20", "20", "0"), ("2", "20", "20", "0")]
