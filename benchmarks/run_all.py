"""Run every benchmark and write one results table (`make bench`).

Each benchmark is a script that measures the product against a baseline in the same run and records
its headline figures with `benchmarks._support.record`. This runner starts each in its own process
(full size by default, `--tiny` for the seconds-long run the test suite does so none can rot), collects
the records and writes them as markdown and JSON:

    python benchmarks/run_all.py [--tiny] [--only NAME ...] [--out benchmarks/results]

Exit status: 1 if a benchmark crashed or recorded nothing. A figure above its target is shown as such
in the table, not an error: the table is the place to read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# name -> (full-size arguments, tiny arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "pool_intake": (
        ["--database", "sqlite", "postgresql"],
        ["--rows", "300", "--big-rows", "2000", "--database", "sqlite", "postgresql"],
    ),
    "email_delivery": ([], ["--messages", "20", "--apprise-sample", "2"]),
    "delivery_concurrency": ([], ["--messages", "20", "--deliverers", "2"]),
    "june_scale": ([], ["--national-cities", "3", "--repeats", "1", "--jilin-and-national"]),
    "worker_scale": ([], ["--national-cities", "0", "--flows", "1"]),
    "portal_uploads": ([], ["--units", "2", "--window", "1"]),
}


def run(
    name: str, args: list[str], results: Path, timeout: float | None, prefect_api: str | None
) -> tuple[int, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAMPAIGN_", "PREFECT_API_URL"))}
    env["CAMPAIGN_BENCH_RESULTS"] = str(results)
    if prefect_api:
        env["PREFECT_API_URL"] = prefect_api
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, f"benchmarks/{name}.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - start


def markdown(rows: list[dict[str, object]], tiny: bool) -> str:
    def fmt(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:,.2f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = [
        f"Benchmarks{' (tiny sizes: a smoke run, not a measurement)' if tiny else ''} — "
        f"{dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "",
        "| benchmark | measure | product | baseline | ratio | target | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        verdict = {True: "OK", False: "ABOVE TARGET", None: ""}[r.get("ok")]  # type: ignore[index]
        lines.append(
            f"| {r['benchmark']} | {r['measure']} | {fmt(r.get('value'))} {r.get('unit', '')} "
            f"| {fmt(r.get('baseline'))} | {fmt(r.get('ratio'))} | {r.get('target') or ''} | {verdict} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tiny", action="store_true", help="each benchmark once at a tiny size")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), default=sorted(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per benchmark")
    parser.add_argument("--prefect-api", help="a running Prefect API for the flows (default: a server each)")
    args = parser.parse_args(argv)
    failed: list[str] = []
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        for name in args.only:
            full, tiny = BENCHMARKS[name]
            results = Path(tmp) / f"{name}.jsonl"
            print(f"== {name} {' '.join(tiny if args.tiny else full)}", flush=True)
            code, output, seconds = run(
                name, tiny if args.tiny else full, results, args.timeout, args.prefect_api
            )
            print(output, flush=True)
            recorded = (
                [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
            )
            if code != 0 or not recorded:
                failed.append(f"{name} (exit {code}, {len(recorded)} figures)")
            rows += recorded
            print(f"   {name}: exit {code}, {len(recorded)} figures, {seconds:.0f} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, args.tiny)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    args.out.with_suffix(".json").write_text(
        json.dumps({"tiny": args.tiny, "results": rows}, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    print(table)
    print(f"written: {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")
    if failed:
        print("FAILED: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
