"""Reminder delivery to a local SMTP server: mails per second through the product's outbox and delivery
path, against raw smtplib sending the same messages to the same server in the same run.

    python benchmarks/email_delivery.py [--messages 1000]

The product path reads due rows from the outbox, sends each over one SMTP session, and commits each
outcome before the next send (so a crash never sends a message twice). Target: within 3× of raw
smtplib on one connection. apprise's e-mail plugin, which paces itself to one mail per 5.5 s by default
and opens a new TLS context per message, is shown for scale on a small sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import smtplib
import sys
import time
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._support import isolated_env, local_smtp, record


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--apprise-sample", type=int, default=20)
    args = parser.parse_args()
    n = args.messages

    isolated_env("email")
    handler = Counter()
    controller = local_smtp(handler)
    port = controller.port  # type: ignore[attr-defined]
    from config import load_config
    from config.settings import get_settings
    from models.db import migrate, session_scope
    from models.messages import render
    from models.outbox import outbox_key
    from models.planning import Decision
    from models.tables import Channel, MessageKind
    from tasks.deliverer import deliver_kind
    from tasks.notify import enqueue
    from tasks.sync import sync_hierarchy

    migrate()
    cfg = load_config()
    units = [u for u in cfg.units if u.level != "province"]
    ob = cfg.campaign.obligation("june_survey")
    with session_scope() as session:
        sync_hierarchy(session, cfg)
        session.add_all(
            Channel(unit_key=u.key, kind="email", address=f"hr-{u.key}@example.cn") for u in units
        )
    messages = []
    for i in range(n):
        unit = units[i % len(units)]
        rendered = render(
            "reminder",
            {
                "campaign": cfg.campaign,
                "obligation": ob,
                "unit": unit,
                "due": dt.date(2022, 6, 30),
                "today": dt.date(2022, 6, 23),
                "step": "D-5",
                "period_label": "",
                "working_days_left": 5,
                "items": [],
            },
        )
        key = outbox_key(MessageKind.reminder, cfg.campaign.year, "bench", i)
        messages.append(Decision(unit.key, None, MessageKind.reminder, "D-5", key, rendered))
    with session_scope() as session:
        enqueue(session, messages)

    # The product: outbox → one SMTP session → per-message commit.
    start = time.perf_counter()
    counts = deliver_kind("email", cfg.campaign)
    product = time.perf_counter() - start
    assert counts.get("sent") == n and handler.count == n, (counts, handler.count)

    def mail(d: Decision) -> EmailMessage:
        m = EmailMessage()
        m["From"] = get_settings().mail_from
        m["To"] = Address(d.unit_key, addr_spec=f"hr-{d.unit_key}@example.cn")
        m["Subject"] = d.message.subject
        m.set_content(d.message.body, charset="utf-8")
        return m

    # Raw smtplib, one connection, the same messages (built in the loop, as the product does).
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
        for d in messages:
            smtp.send_message(mail(d))
    raw_one = time.perf_counter() - start

    # Raw smtplib, a new connection per mail.
    start = time.perf_counter()
    for d in messages:
        with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as smtp:
            smtp.send_message(mail(d))
    raw_each = time.perf_counter() - start

    # apprise's mailto:// with its throttle turned off, on a sample.
    import apprise

    notifier = apprise.Apprise()
    notifier.add(f"mailto://127.0.0.1:{port}?from=bench@example.cn&to=hr@example.cn&mode=insecure")
    for service in notifier:
        service.request_rate_per_sec = 0
    sample = messages[: args.apprise_sample]
    start = time.perf_counter()
    for d in sample:
        notifier.notify(body=d.message.body, title=d.message.subject)
    apprise_rate = len(sample) / (time.perf_counter() - start)
    controller.stop()

    print(f"messages: {n} to a local aiosmtpd server")
    print(f"product outbox + delivery : {n / product:8.1f} mails/s")
    print(f"raw smtplib, one session  : {n / raw_one:8.1f} mails/s")
    print(f"raw smtplib, one per mail : {n / raw_each:8.1f} mails/s")
    print(f"apprise mailto, no throttle (sample of {len(sample)}): {apprise_rate:8.1f} mails/s")
    print(f"ratio product time ÷ raw smtplib (one session): {product / raw_one:.2f}  (target ≤ 3)")
    print(f"ratio product time ÷ raw smtplib (one per mail): {product / raw_each:.2f}")
    record(
        "email_delivery",
        f"{n} reminders through outbox and delivery, vs raw smtplib on one connection",
        round(n / product, 1),
        unit="mails/s",
        baseline=round(n / raw_one, 1),
        ratio=round(product / raw_one, 2),
        target="≤ 3× the time",
        ok=product / raw_one <= 3,
    )


if __name__ == "__main__":
    main()
