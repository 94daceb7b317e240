"""Each benchmark once at a tiny size, through the runner `make bench` uses, so none can rot between the
times someone measures. Speed is not judged here (tiny sizes measure nothing); that each runs to the
end and records its figures is, and so is correctness where a benchmark checks it (no duplicates)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.run_all import BENCHMARKS, main

# The tiny runs that start a Prefect server or several processes go first (see conftest's ordering).
pytestmark = pytest.mark.postgres  # pool_intake and delivery_concurrency also use PostgreSQL


@pytest.mark.usefixtures("prefect_harness")  # lent to the benchmarks that run flows
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs_at_a_tiny_size(name: str, tmp_path: Path) -> None:
    from prefect.settings import PREFECT_API_URL

    out = tmp_path / "results"
    run = ["--tiny", "--only", name, "--out", str(out), "--timeout", "300"]
    assert main([*run, "--prefect-api", str(PREFECT_API_URL.value())]) == 0
    results = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["results"]
    assert results and all(r["benchmark"] == name and r["value"] is not None for r in results)
    assert f"| {name} |" in out.with_suffix(".md").read_text(encoding="utf-8")
    if name == "delivery_concurrency":
        assert [r["ok"] for r in results] == [True]  # 2 deliverers at once: nothing twice, nothing lost
    if name == "pool_intake":
        measures = " ".join(r["measure"] for r in results)
        assert "sqlite" in measures and "postgresql" in measures and "peak memory" in measures
