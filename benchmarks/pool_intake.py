"""The incubation-pool intake on large workbooks, against a baseline measured in the same run.

Whole intake: read, check every row (credit code, ID number, phone, region, dates, numbers), derive
tilts, priority and pool, upsert — `tasks.pool.take_in_workbook`, as a flow run calls it.
Baseline: pandas' fastest reader for the same file (C parser for CSV, calamine for XLSX) and a bulk
insert of the raw text rows, unchecked, into the same database (`DataFrame.to_sql`).

Printed: rows per second for both and their ratio (targets: CSV ≤ 2×, XLSX ≤ 1.5×) on each database,
then the peak memory of a separate process taking in a 1,000,000-row CSV (target: under 1 GB).

    python benchmarks/pool_intake.py [--rows 100000] [--big-rows 1000000] [--skip-big]
                                     [--database sqlite postgresql]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._support import drop_postgres, isolated_env, postgres_database, record

RECEIVED = dt.datetime(2022, 7, 5, 1, tzinfo=dt.UTC)
SENDER = "吉林省"  # the province may send rows for any county


def generate(path: Path, rows: int) -> Path:
    """`rows` applications spread over every county, 1 % with a bad phone number, streamed to disk."""
    from config import load_config
    from models.pool import Hierarchy
    from tests.pool_data import HEADERS, application, credit_code, id_number

    leaves = [u for u in Hierarchy.of(load_config().units).leaves() if u.key.isdigit()]
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix
    if suffix == ".csv":
        fh = path.open("w", encoding="gb18030", newline="")
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        write = writer.writerow
    else:
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("申报表")
        sheet.append(HEADERS)
        write = sheet.append
    for n in range(rows):
        unit = leaves[n % len(leaves)]
        row = application(
            n,
            **{
                "统一社会信用代码": credit_code(n, unit.key),
                "负责人身份证号": id_number(n, unit.key),
                "所在县（市、区）": unit.name if n % 2 else unit.key,
                "带动创业人数": str(5 + n % 50),
                "吸纳就业人数": str(10 + n % 90),
                "成立日期": f"{2010 + n % 12}/{1 + n % 12}/{1 + n % 28}",
                "联系电话": "1391234567" if n % 100 == 7 else f"139{n:08d}",
            },
        )
        write([row[h] for h in HEADERS])
    if suffix == ".csv":
        fh.close()
    else:
        book.save(path)
    return path


def fresh_database() -> None:
    from config import load_config
    from models.db import migrate, session_scope
    from tasks.sync import sync_hierarchy

    migrate()
    with session_scope() as session:
        sync_hierarchy(session, load_config())


def whole_intake(path: Path) -> dict[str, object]:
    from config import load_config
    from tasks.pool import take_in_workbook

    cfg = load_config()
    province = next(u for u in cfg.units if u.name == SENDER)
    return take_in_workbook(cfg, path, RECEIVED, sender=province)


def baseline(path: Path) -> int:
    import pandas as pd

    from models.db import get_engine

    if path.suffix == ".csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="gb18030")
    else:
        frame = pd.read_excel(path, engine="calamine", dtype=str)
    frame.to_sql("baseline_rows", get_engine(), if_exists="append", index=False, chunksize=10_000)
    return len(frame)


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def use_database(url: str) -> None:
    from config.settings import get_settings

    os.environ["CAMPAIGN_DATABASE_URL"] = url
    get_settings.cache_clear()


def compare(root: Path, rows: int, suffix: str, target: float, database: str) -> None:
    path = root / f"省就业服务局-培育库{rows}{suffix}"
    if not path.exists():
        generate(path, rows)
    # baseline and intake share one database; each format and database its own
    url = postgres_database("bench_pool") if database == "postgresql" else f"sqlite:///{root}/{suffix[1:]}.db"
    use_database(url)
    try:
        fresh_database()
        base_s, _ = timed(baseline, path)
        ours_s, summary = timed(whole_intake, path)
    finally:
        if database == "postgresql":
            drop_postgres(url)
    assert summary["rows_read"] == rows, summary
    ratio = ours_s / base_s
    print(
        f"{suffix[1:].upper():4} {database:10} {rows:>9,} rows  intake {rows / ours_s:>9,.0f} rows/s "
        f"({ours_s:6.1f} s)  baseline {rows / base_s:>9,.0f} rows/s ({base_s:6.1f} s)  ratio {ratio:4.2f}× "
        f"(target ≤ {target}×) {'OK' if ratio <= target else 'ABOVE TARGET'}"
        f"  [admitted {summary['admitted']}, refused rows {summary['rejected']}]"
    )
    record(
        "pool_intake",
        f"{suffix[1:].upper()} {rows:,} rows, {database}: whole intake vs read + to_sql",
        round(rows / ours_s),
        unit="rows/s",
        baseline=round(rows / base_s),
        ratio=round(ratio, 2),
        target=f"≤ {target}× the time",
        ok=ratio <= target,
    )


def child(path: Path) -> None:
    """Run in a separate process so its peak memory is its own."""
    fresh_database()
    seconds, summary = timed(whole_intake, path)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{summary['rows_read']} {seconds:.1f} {peak_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--database", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite"])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    root = isolated_env("pool")
    print(f"incubation-pool intake, {args.rows:,} generated applications (1 % with a bad phone number)")
    for database in args.database:
        compare(root, args.rows, ".csv", 2.0, database)
        compare(root, args.rows, ".xlsx", 1.5, database)
    if args.skip_big:
        return
    big = generate(root / "big" / f"省就业服务局-培育库{args.big_rows}.csv", args.big_rows)
    env = dict(os.environ, CAMPAIGN_DATABASE_URL=f"sqlite:///{root / 'big' / 'campaign.db'}")
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(big)], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    rows, seconds, peak = int(out[-3]), float(out[-2]), float(out[-1])
    print(
        f"CSV  {rows:>9,} rows  intake {rows / seconds:>9,.0f} rows/s ({seconds:6.1f} s)  "
        f"peak memory {peak:,.0f} MB (target < 1,024 MB) {'OK' if peak < 1024 else 'ABOVE TARGET'}"
    )
    record(
        "pool_intake",
        f"CSV {rows:,} rows, SQLite: peak memory of the intake process",
        round(peak),
        unit="MB",
        target="< 1,024 MB",
        ok=peak < 1024,
    )


if __name__ == "__main__":
    main()
