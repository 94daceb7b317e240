"""Serve every deployment on its calendar schedule, with a local Prefect server if none is configured."""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx

from config import load_config
from models.clock import local_today
from models.db import migrate

log = logging.getLogger("campaign.serve")


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def local_prefect_server(port: int = 4200) -> Iterator[str]:
    """Start `prefect server start` (SQLite, in PREFECT_HOME) unless PREFECT_API_URL points elsewhere."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured
        return
    url = f"http://127.0.0.1:{port}/api"
    if _healthy(url):
        log.info("using the Prefect server already running at %s", url)
        yield url
        return
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_API_URL=url)
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with code {proc.returncode}")
            if _healthy(url):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("prefect server did not become healthy within 120 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def deployments() -> list[object]:
    from flows.assessment import annual_assessment
    from flows.june import june_survey, standards_filing
    from flows.operations import deliver_notifications, record_submission
    from flows.pool import pool_intake
    from flows.publicity import exchange_meeting, publicity
    from flows.review import october_review
    from flows.schedules import daily_schedule, delivery_schedule, working_day_schedule
    from flows.services import (
        assign_leaders,
        funds_tracking,
        half_year_training,
        quarterly_visits,
        record_services,
    )

    cfg = load_config()
    dated = [
        june_survey,
        standards_filing,
        quarterly_visits,
        half_year_training,
        funds_tracking,
        october_review,
        publicity,
        annual_assessment,
    ]
    out = []
    for fl in dated:
        schedule = daily_schedule(cfg, fl.name)
        out.append(
            fl.to_deployment(
                name=f"{cfg.campaign.year}",
                schedules=[schedule] if schedule else [],
                description=fl.description,
                tags=[f"campaign-{cfg.campaign.year}"],
            )
        )
    out.append(
        pool_intake.to_deployment(
            name=f"{cfg.campaign.year}",
            schedules=[working_day_schedule(cfg)],
            description=pool_intake.description,
            tags=[f"campaign-{cfg.campaign.year}"],
        )
    )
    out.append(
        deliver_notifications.to_deployment(
            name=f"{cfg.campaign.year}",
            schedules=[delivery_schedule(cfg)],
            description=deliver_notifications.description,
        )
    )
    for operator_form in (
        record_submission,
        assign_leaders,
        record_services,
        exchange_meeting,
    ):  # run from the UI's form, no schedule
        out.append(
            operator_form.to_deployment(name=f"{cfg.campaign.year}", description=operator_form.description)
        )
    return out


def serve(port: int = 4200) -> None:
    from prefect import serve as prefect_serve
    from prefect.settings import PREFECT_API_URL, temporary_settings

    cfg = load_config()
    migrate()
    today = local_today(cfg.campaign)
    if today.year > cfg.campaign.year:
        log.warning(
            "the newest campaign config is %s: its schedules are in the past, so only manual runs will happen. "
            "Add config/campaigns/%s.yaml for this year's campaign.",
            cfg.campaign.year,
            today.year,
        )
    with local_prefect_server(port) as url, temporary_settings(updates={PREFECT_API_URL: url}):
        os.environ["PREFECT_API_URL"] = url  # flow runs start in subprocesses that read the environment
        print(f"Prefect UI: {url.removesuffix('/api')}  — 打开界面，在 Deployments 中选择流程并点击 Run")
        prefect_serve(*deployments(), pause_on_shutdown=False)  # type: ignore[arg-type]
