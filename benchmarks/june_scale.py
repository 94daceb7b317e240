"""The June flows at national scale (~3,000 county-level units) against Jilin scale (71 units).

Both runs walk the same days (kickoff, a reminder, the first escalation) through the real flows under a
local Prefect server, with 10 % of units submitting a file in between. Printed: time per unit at each
scale and their ratio. Growth is linear when the ratio stays near 1 or below (fixed per-run costs
weigh less at national scale); a per-unit query or task would push it far above.

    python benchmarks/june_scale.py [--national-cities 330]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time
from pathlib import Path

import yaml

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._support import isolated_env, record

DAYS = [dt.date(2022, 6, 21), dt.date(2022, 6, 23), dt.date(2022, 7, 1)]


def national_regions(config_dir: Path, cities: int, counties_per_city: int) -> int:
    """Jilin's real units plus synthetic cities and counties under the same province."""
    path = config_dir / "regions.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for c in range(cities):
        city = f"BM-C{c:04d}"
        data["units"].append(
            {
                "key": city,
                "name": f"测试市{c}",
                "bureau": f"测试市{c}人社局",
                "level": "city",
                "reports_to": "220000",
            }
        )
        for k in range(counties_per_city):
            data["units"].append(
                {
                    "key": f"BM-X{c:04d}{k:02d}",
                    "name": f"测试市{c}县{k}",
                    "bureau": f"测试市{c}县{k}人社局",
                    "level": "county",
                    "reports_to": city,
                }
            )
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return len(data["units"])


def run_scale(label: str, cities: int) -> tuple[int, float]:
    root = isolated_env(label)
    units = national_regions(root / "config", cities, 9) if cities else 71
    from config import load_config
    from flows.june import june_survey
    from models.db import migrate

    migrate()
    cfg = load_config()
    june_survey(today=DAYS[0], dry_run=True)  # warm-up: imports, first sync; a dry run sends nothing
    owing = [u for u in cfg.units if u.level != "province"]
    inbox = root / "var" / "inbox" / "june_survey"
    start = time.perf_counter()
    for i, day in enumerate(DAYS):
        if i == 1:  # between kickoff and reminder, every tenth unit files its survey
            for unit in owing[::10]:
                (inbox / f"{unit.key}-调研材料.pdf").write_bytes(f"survey {unit.key}".encode())
        june_survey(today=day)
    elapsed = time.perf_counter() - start
    return units, elapsed


def largest_artifact() -> tuple[str, int]:
    """The largest artifact the runs published, as JSON bytes: each becomes an event, and Prefect
    refuses events over 1.5 MB."""
    import json

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(limit=200)
    sizes = [
        (
            a.key or "",
            len(json.dumps(a.data, ensure_ascii=False).encode()) + len((a.description or "").encode()),
        )
        for a in artifacts
    ]
    return max(sizes, key=lambda s: s[1]) if sizes else ("", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--national-cities", type=int, default=330, help="synthetic cities (9 counties each)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per scale; the fastest counts")
    parser.add_argument(
        "--jilin-and-national", action="store_true", help="only the two ends (no marginal cost): a smoke run"
    )
    args = parser.parse_args()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    cities = args.national_cities
    scales = {"Jilin": 0, "a third": cities // 3, "two thirds": 2 * cities // 3, "national": cities}
    if args.jilin_and_national:
        scales = {"Jilin": 0, "national": cities}
    results: dict[str, tuple[int, float]] = {}
    # A Prefect server of its own, unless one is configured (the test suite lends its harness).
    server = contextlib.nullcontext() if os.environ.get("PREFECT_API_URL") else prefect_test_harness(120)
    with server, temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        for label, n in scales.items():
            # Twice each, keeping the faster: Prefect's own SQLite backend sometimes answers 503 and
            # its client backs off ~2 s — noise, not this project's cost.
            runs = [run_scale(label.replace(" ", "-"), n) for _ in range(args.repeats)]
            results[label] = (runs[0][0], min(seconds for _, seconds in runs))
        biggest_key, biggest = largest_artifact()  # after the national runs: the largest tables
    for label, (units, seconds) in results.items():
        print(
            f"{label:11s}: {units:5d} units, {seconds:6.2f} s for {len(DAYS)} days, {seconds / units * 1000:6.2f} ms/unit"
        )
    (n0, t0), (n3, t3) = results["Jilin"], results["national"]
    print(
        f"ratio of time per unit, national ÷ Jilin: {(t3 / n3) / (t0 / n0):.2f}  (≤ 1: fixed per-run costs amortise)"
    )
    limit = 1_500_000
    print(f"largest artifact: {biggest_key} {biggest:,} bytes (Prefect's event limit {limit:,})")
    record(
        "june_scale",
        f"largest artifact at {n3:,} units ({biggest_key})",
        biggest,
        unit="bytes",
        target=f"< {limit:,} (Prefect's event limit)",
        ok=biggest < limit,
    )
    per_unit = (t3 / n3) / (t0 / n0)
    record(
        "june_scale",
        f"June flows, time per unit at {n3:,} units vs Jilin's {n0}",
        round(t3 / n3 * 1000, 2),
        unit="ms/unit",
        baseline=round(t0 / n0 * 1000, 2),
        ratio=round(per_unit, 2),
        target="≤ 1 (fixed costs amortise)",
        ok=per_unit <= 1,
    )

    if "a third" not in results:
        return
    # The cost of one more unit over two equal steps up: linear growth keeps the two equal.
    (n1, t1), (n2, t2) = results["a third"], results["two thirds"]
    first, second = (t2 - t1) / (n2 - n1) * 1000, (t3 - t2) / (n3 - n2) * 1000
    print(
        f"marginal ms/unit: {first:.2f} (a third → two thirds), {second:.2f} (two thirds → national); "
        f"ratio {second / first:.2f}  (linear: ≈ 1; quadratic growth would show ≈ 1.7)"
    )
    record(
        "june_scale",
        f"marginal cost per unit, {n2:,}→{n3:,} vs {n1:,}→{n2:,} units",
        round(second, 2),
        unit="ms/unit",
        baseline=round(first, 2),
        ratio=round(second / first, 2),
        target="≈ 1 (linear; quadratic ≈ 1.7)",
        ok=second / first <= 1.3,
    )


if __name__ == "__main__":
    main()
