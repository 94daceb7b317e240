"""The deadline machinery every dated obligation reuses: intake, progress, reminders, escalation,
delivery, status.

A flow for a new obligation is this cycle under the flow's registered name (config/flows.py), which
the obligation's `flow:` names; what differs between obligations (dates, evidence, policy) is data in
config/campaigns/<year>.yaml. Obligations evidenced by files
(june) take in their inbox folders as files; those evidenced by records (visits, trainings, funds)
name their sheets, and a task that turns the records into progress.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from prefect.logging import get_run_logger

from config import CampaignConfig
from config.flows import BY_NAME, obligations_for
from flows.dated import business_run, campaign_for
from models.clock import moment
from models.messages import run_summary
from tasks.delivery import deliver_all
from tasks.inbox import FolderIntake, fail_if_nothing_done, tell_refusals
from tasks.intake import document_counts, take_in_inbox
from tasks.notify import preview_notices, record_reminders
from tasks.overview import publish_overview
from tasks.report import publish_status
from tasks.sheets import SheetIntake, brief, take_in_sheets
from tasks.sync import sync_campaign


def deadline_cycle(
    flow_name: str,
    today: dt.date | None,
    *,
    dry_run: bool = False,
    campaign_year: int | None = None,
    sheets: Sequence[Callable[[CampaignConfig], SheetIntake]] = (),
    progress: Callable[[CampaignConfig, dt.date], dict[str, Any]] | None = None,
    publish: Callable[[CampaignConfig, dt.date], dict[str, Any]] | None = None,
    file_obligations: Sequence[str] | None = None,
) -> dict[str, Any]:
    """One day of the cycle for the obligations whose `flow:` names this flow. Safe to run any number
    of times a day.

    Submissions are files in each obligation's inbox folder, or the records of `sheets`, which
    `progress` (a task) turns into obligations' progress. `file_obligations` are those evidenced by
    files: by default all of them without sheets, none with sheets.

    A `dry_run` takes nothing in and sends nothing: it shows the notices the day would queue.
    """
    log = get_run_logger()
    # a broken config, or a day outside the campaign, stops here, before anything is written
    cfg, today = campaign_for(flow_name, today, campaign_year)
    obligation_keys = obligations_for(cfg.campaign, flow_name)
    parameters = {"obligations": obligation_keys, "dry_run": dry_run}
    with business_run(flow_name, cfg, today, parameters) as counts:
        counts["synced"] = sync_campaign(cfg, obligation_keys)
        if dry_run:
            counts["preview"] = preview_notices(cfg, obligation_keys, today)
            log.info(
                "%s %s 预演：本日将发出 %d 条通知，均未发送",
                flow_name,
                today,
                counts["preview"]["would_send"],
            )
            return counts
        if file_obligations is None:
            file_obligations = [] if sheets else obligation_keys
        counts["intake"] = {}
        intakes: list[FolderIntake] = []
        if file_obligations:
            documents = take_in_inbox(cfg, list(file_obligations), today)
            intakes += documents
            # a files-only cycle reports the files' counts as its intake; a mixed one under "files"
            counts["intake"] = {"files": document_counts(documents)} if sheets else document_counts(documents)
        if sheets:
            received_at = moment(today, cfg.campaign)
            for make in sheets:
                intake = make(cfg)
                workbooks = take_in_sheets(cfg, intake, received_at)
                intakes.append(workbooks)
                counts["intake"][intake.kind] = [brief(s) for s in workbooks.results]
        refused = [pair for i in intakes for pair in i.refused()]  # shown in the run's log and summaries
        for file, reason in refused:
            log.warning("退回 %s：%s", file, reason)
        kept = [k for i in intakes for k in i.kept]
        if kept:
            counts["kept"] = kept
        tell_refusals(cfg)
        if progress is not None:
            counts["progress"] = progress(cfg, today)
        counts["notifications"] = record_reminders(cfg, obligation_keys, today)
        counts["delivery"] = deliver_all(cfg.campaign)
        counts["status"] = {
            key: publish_status(cfg, key, today, counts["notifications"], refused) for key in obligation_keys
        }
        if publish is not None:
            counts["published"] = publish(cfg, today)
        counts["overview"] = publish_overview(cfg, today)
        log.info(run_summary(BY_NAME[flow_name].title, today, counts))
        fail_if_nothing_done(intakes)
    return counts
