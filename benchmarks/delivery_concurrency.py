"""Delivery with 1, 4 and 10 deliverer processes at once over the same outbox, to a local SMTP server.

Each deliverer claims a message in the database before sending it, so however many run at once (the
schedule, an operator, several workers) each message must arrive exactly once. Printed per number of
deliverers: mails received, distinct Message-IDs, duplicates (must be 0), wall time, and throughput as
a ratio of one deliverer's, measured in the same run.

    python benchmarks/delivery_concurrency.py [--messages 3000] [--deliverers 1 4 10] [--database sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._support import REPO, drop_postgres, isolated_env, local_smtp, postgres_database, record

DELIVERER = "from config import load_config\nfrom tasks.deliverer import deliver_kind\ndeliver_kind('email', load_config().campaign)"


class Received:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        content: bytes = envelope.content  # type: ignore[attr-defined]
        header = next(line for line in content.split(b"\r\n") if line.lower().startswith(b"message-id:"))
        with self.lock:
            self.ids.append(header.split(b":", 1)[1].strip().decode())
        return "250 OK"


def queue(count: int, round_: int) -> None:
    """`count` rendered-size reminders, as a flow would have queued them."""
    from config import load_config
    from models.db import insert_new, session_scope
    from models.tables import OutboxMessage

    units = [u.key for u in load_config().units]
    body = "请于2022年6月30日前报送调研材料：问题清单、任务清单、实施方案。\n" * 8
    now = dt.datetime.now(dt.UTC)
    with session_scope() as session:
        insert_new(
            session,
            OutboxMessage,
            [
                {
                    "dedupe_key": f"bench:{round_}:{n}",
                    "unit_key": units[n % len(units)],
                    "kind": "reminder",
                    "step": "D-5",
                    "channel_kind": "email",
                    "recipient": f"hr{n}@bureau.example.cn",
                    "subject": f"【催报提醒】开展返乡入乡创业实地调研 {n}",
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "created_at": now,
                }
                for n in range(count)
            ],
            unique=["dedupe_key"],
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--deliverers", type=int, nargs="+", default=[1, 4, 10])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()

    isolated_env("delivery")
    pg_url = None
    if args.database == "postgresql":
        pg_url = postgres_database("bench_delivery")
        os.environ["CAMPAIGN_DATABASE_URL"] = pg_url
    handler = Received()
    controller = local_smtp(handler)
    from config import load_config
    from models.db import migrate, session_scope
    from tasks.sync import sync_hierarchy

    migrate()
    with session_scope() as session:
        sync_hierarchy(session, load_config())

    print(f"{args.messages} messages, local aiosmtpd, {args.database}")
    print(
        f"{'deliverers':>10} {'received':>9} {'distinct':>9} {'duplicates':>10} {'seconds':>8} {'mails/s':>8} {'ratio':>6}"
    )
    baseline = None
    worst = 0
    try:
        for round_, count in enumerate(args.deliverers):
            queue(args.messages, round_)
            before = len(handler.ids)
            start = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-c", DELIVERER], cwd=REPO) for _ in range(count)]
            codes = [p.wait() for p in procs]
            seconds = time.perf_counter() - start
            got = handler.ids[before:]
            duplicates = len(got) - len(set(got))
            worst = max(worst, duplicates, args.messages - len(set(got)))
            rate = len(got) / seconds
            baseline = baseline or rate
            record(
                "delivery_concurrency",
                f"{count} deliverer(s) at once on {args.messages} messages ({args.database}): "
                f"{duplicates} duplicates, {args.messages - len(set(got))} lost",
                round(rate),
                unit="mails/s",
                baseline=round(baseline),
                ratio=round(rate / baseline, 2),
                target="0 duplicates, 0 lost",
                ok=duplicates == 0 and len(set(got)) == args.messages,
            )
            print(
                f"{count:>10} {len(got):>9} {len(set(got)):>9} {duplicates:>10} {seconds:>8.1f} {rate:>8.0f}"
                f" {rate / baseline:>6.2f}" + ("" if set(codes) == {0} else f"  exit codes {codes}")
            )
    finally:
        controller.stop()
        if pg_url:
            drop_postgres(pg_url)
    print("duplicates and losses: " + ("none" if worst == 0 else f"{worst} — FAILED"))
    sys.exit(1 if worst else 0)


if __name__ == "__main__":
    main()
