"""A national-scale campaign day through Prefect's work pool, on 1 worker and on 2.

Every dated flow's run for one day (default 2022-07-01: the June obligations' first escalation, the Q3
visits' and the half-year trainings' kickoff, the rolling pool intake …) is created through the API at
once and worked off by `campaign worker`s taking one run at a time each. Both counts run the same
deployments against a fresh campaign database each (PostgreSQL), on the same Prefect server.

Printed: the wall time from the first run created to the last one finished, for 1 and 2 workers, and
their ratio (2 ÷ 1: about 0.5 when the runs are independent and the machine has a core per worker).

    python benchmarks/worker_scale.py [--national-cities 330] [--day 2022-07-01] [--flows N]
                                      [--prefect-api URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._support import drop_postgres, isolated_env, postgres_database, record
from benchmarks.june_scale import national_regions


def psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://")


def work_off(stack: object, workers: int, day: dt.date, flows: int | None) -> tuple[int, float]:
    """Start `workers` workers, create the day's dated runs, wait for all; (runs, seconds)."""
    from tests.production_stack import Stack, stop

    assert isinstance(stack, Stack)
    started = [stack.worker(f"w{i + 1}", limit=1) for i in range(workers)]
    stack.wait_online(workers)
    dated = sorted(i for name, i in stack.deployments().items() if name.startswith(f"{day.year}年·"))
    dated = dated[:flows] if flows else dated
    start = time.perf_counter()
    runs = [stack.run(i, today=day.isoformat()) for i in dated]
    for run in runs:
        stack.wait(run, ("COMPLETED",), timeout=3600)
    seconds = time.perf_counter() - start
    for proc in started:
        stop(proc)
    return len(runs), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national-cities", type=int, default=330, help="synthetic cities (9 counties each)")
    parser.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2022, 7, 1))
    parser.add_argument("--flows", type=int, help="only the first N dated flows (a smoke run)")
    parser.add_argument("--prefect-api", help="use this Prefect server instead of starting one")
    args = parser.parse_args()
    from tests.production_stack import production_stack

    root = isolated_env("workers")
    units = national_regions(root / "config", args.national_cities, 9) if args.national_cities else 71
    api = args.prefect_api or os.environ.get("PREFECT_API_URL")
    server_db = None if api else postgres_database("bench_prefect")
    databases = [postgres_database("bench_workers_1")]
    results: dict[int, tuple[int, float]] = {}
    try:
        with production_stack(
            root,
            campaign_database_url=psycopg_url(databases[0]),
            config_dir=root / "config",
            server_database_url=server_db and server_db.replace("postgresql://", "postgresql+asyncpg://"),
            api=api,
        ) as stack:
            stack.cli("deploy")  # migrates the first database
            # The second count starts from the same state: a copy of the first before any run.
            databases.append(postgres_database("bench_workers_2", template=databases[0]))
            for n, database in zip((1, 2), databases, strict=True):
                stack.env["CAMPAIGN_DATABASE_URL"] = psycopg_url(database)  # the workers' own setting
                results[n] = work_off(stack, n, args.day, args.flows)
    finally:
        for url in [*databases, *([server_db] if server_db else [])]:
            drop_postgres(url)
    (runs, one), (_, two) = results[1], results[2]
    ratio = two / one
    print(
        f"{units:,} units, {runs} dated flows on {args.day}: 1 worker {one:6.1f} s, 2 workers {two:6.1f} s, "
        f"ratio {ratio:.2f} (2 ÷ 1; {os.cpu_count()} cores here)"
    )
    record(
        "worker_scale",
        f"{units:,} units, {runs} dated flows on {args.day}: 2 workers vs 1 (one run at a time each)",
        round(two, 1),
        unit="s",
        baseline=round(one, 1),
        ratio=round(ratio, 2),
        target="< 1 (more workers, less time)",
        ok=ratio < 1,
    )


if __name__ == "__main__":
    main()
