"""The frame of every dated run (a flow given a business date): which campaign it acts for, whether
that date lies in the campaign's window, and the business clock and audit row around its work.

Runs from a schedule, the UI's Quick run and the CLI all pass here, so a run for a day outside its
campaign refuses before it writes or sends anything, however it was started.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from config import CampaignConfig, load_config
from config.errors import CampaignError, RunRefused
from config.flows import BY_NAME
from config.loader import available_years
from config.settings import get_settings
from models.clock import business_day, local_today
from models.deadlines import campaign_window
from tasks.audit import audited, current_trigger
from tasks.intake_requests import taken
from tasks.run_lease import one_at_a_time

PARAMETER_HELP = {  # the dated flows' common parameters, as the UI's run form shows them
    "today": (
        "业务日期（默认今天，北京时间）",
        "本次运行按哪一天办理：留空即今天。补办或演练某一天时填写该日期，须在活动期内。",
    ),
    "dry_run": (
        "预演",
        "勾选后只生成本日将发出的通知清单（见本次运行的 Artifacts），不收件、不发送、不记录任何提醒。",
    ),
    "campaign_year": ("活动年度", "按哪一年度的活动配置办理；每个年度有自己的一组部署，一般无需修改。"),
}


def campaign_for(flow_name: str, today: dt.date | None, year: int | None) -> tuple[CampaignConfig, dt.date]:
    """The campaign a dated run acts for, and its business date (default: today in the campaign's
    timezone). Without a year: the configured one, else the newest campaign whose window holds the
    date. Raises RunRefused when the date is outside that campaign's window."""
    year = year or get_settings().year
    if year is None:
        for candidate in reversed(available_years()):
            cfg = load_config(candidate)
            day = today or local_today(cfg.campaign)
            if day in campaign_window(cfg.campaign):
                return cfg, day
        year = (available_years() or [None])[-1]
    cfg = load_config(year)
    day = today or local_today(cfg.campaign)
    window = campaign_window(cfg.campaign)
    if day not in window:
        raise RunRefused(flow_name, refusal_text(cfg, day))
    return cfg, day


def refusal_text(cfg: CampaignConfig, day: dt.date) -> str:
    window = campaign_window(cfg.campaign)
    year = cfg.campaign.year
    where = window.outside(day) or "进行中"
    return (
        f"业务日期 {day:%Y-%m-%d} 不在{year}年度活动期内（{window.opens:%Y-%m-%d} 至 {window.closes:%Y-%m-%d}，"
        f"{year}年度活动{where}），本次运行未收件、未发送任何通知。"
        "补办或演练请在“业务日期”中填写活动期内的日期；办理新的年度，须先由系统管理员生成并审核该年度的活动配置。"
    )


P = ParamSpec("P")
R = TypeVar("R")


def refuses_calmly(fn: Callable[P, R]) -> Callable[P, Any]:
    """Under `@flow`: a deployment run (schedule, the UI's Quick run, a worker) asked for a day outside its
    campaign ends `未办理` (a cancelled state, not a failure) with the refusal's Chinese sentence as its
    message, and no traceback. A direct call (CLI, code) gets the RunRefused, which the CLI prints."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> Any:
        try:
            return fn(*args, **kwargs)
        except RunRefused as exc:
            from prefect.context import FlowRunContext
            from prefect.logging import get_run_logger
            from prefect.states import Cancelled

            context = FlowRunContext.get()
            if context is None or context.flow_run is None or context.flow_run.deployment_id is None:
                raise
            get_run_logger().warning(exc.reason)
            return Cancelled(name="未办理", message=exc.reason)

    return run


@contextmanager
def business_run(
    flow_name: str, cfg: CampaignConfig, today: dt.date, parameters: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Everything the run records is as of `today` (models/clock.py), inside its audit row, while no other
    run of the same flow and year works (tasks/run_lease.py; a pause for an operator lets others on)."""
    year = cfg.campaign.year
    title = BY_NAME[flow_name].title if flow_name in BY_NAME else flow_name  # a step such as the naming
    waiting = f"{title}（{year}年度）的另一次运行正在办理，待其办完后本次运行继续"
    with (
        one_at_a_time(f"{flow_name}:{year}", current_trigger()[0], waiting),
        business_day(today, cfg.campaign),
        audited(flow_name, {"today": today, **parameters}) as counts,
    ):
        taken(flow_name, year, dt.datetime.now(dt.UTC))  # uploads waiting now are this run's to take in
        yield counts


def run_name(flow_name: str, parameters: dict[str, Any], day: dt.date | None = None) -> str:
    """What a run of `flow_name` is called, the same in the UI's run list, the CLI and the logs: a dated
    flow's Chinese title and the business date it acts on (`day` when its form left the date empty),
    a form's title and who filled it in."""
    spec = BY_NAME[flow_name]
    if spec.dated:
        on = parameters.get("today") or day
        dry = "·预演" if parameters.get("dry_run") else ""
        return f"{spec.title}·{str(on)[:10]}{dry}" if on else spec.title
    who = parameters.get(spec.named_by) if spec.named_by else None
    return f"{spec.title}·{who}" if who else spec.title


def run_namer(flow_name: str) -> Callable[[], str]:
    """A `flow_run_name` callable: `run_name` of the running run (a dated run without a date acts on
    today in its campaign's timezone). `campaign serve` names new runs the same way before they start."""

    def name() -> str:
        from prefect.runtime import flow_run

        params = flow_run.parameters or {}
        day = None
        if BY_NAME[flow_name].dated and not params.get("today"):
            try:
                day = local_today(load_config(params.get("campaign_year")).campaign)
            except CampaignError:  # the run itself reports a broken config
                day = dt.date.today()
        return run_name(flow_name, params, day)

    return name
