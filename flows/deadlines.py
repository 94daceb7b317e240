"""The deadline machinery every dated obligation reuses: intake, reminders, escalation, delivery, status.

A flow for a new obligation is this cycle with its obligation keys; what differs between obligations
(dates, evidence, policy) is data in config/campaigns/<year>.yaml.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect.logging import get_run_logger

from config import load_config
from models.clock import local_today
from tasks.audit import audited
from tasks.delivery import deliver_all
from tasks.intake import take_in_inbox
from tasks.notify import record_reminders
from tasks.report import publish_status
from tasks.sync import sync_campaign


def deadline_cycle(flow_name: str, obligation_keys: list[str], today: dt.date | None) -> dict[str, Any]:
    """One day of the cycle for the given obligations. Safe to run any number of times a day."""
    log = get_run_logger()
    cfg = load_config()  # a broken config stops here, before anything is written
    today = today or local_today(cfg.campaign)
    with audited(flow_name, {"today": today, "obligations": obligation_keys}) as counts:
        counts["synced"] = sync_campaign(cfg, obligation_keys)
        intake = take_in_inbox(cfg, obligation_keys, today)
        counts["intake"] = intake.counts()
        for item in intake.rejected:
            log.warning("退回 %s：%s", item["file"], item["reason"])
        counts["notifications"] = record_reminders(cfg, obligation_keys, today)
        counts["delivery"] = deliver_all(cfg.campaign.delivery)
        counts["status"] = {
            key: publish_status(cfg, key, today, counts["notifications"]) for key in obligation_keys
        }
        log.info("%s %s：%s", flow_name, today, counts)
    return counts
