"""Operations: the calendar schedules come from config, and each flow is declared once. What
`campaign serve` gives operators, its API and its UI, is tested on one served instance in test_browser."""

from __future__ import annotations

import datetime as dt

import pytest

from config import load_config
from flows.cli import main as cli
from flows.schedules import daily_schedule, flow_windows


def test_schedules_are_calendar_rrules_in_shanghai_time() -> None:
    cfg = load_config(2022)
    windows = flow_windows(cfg)
    assert (windows["june_survey"].first, windows["june_survey"].last) == (
        dt.date(2022, 6, 21),
        dt.date(2022, 7, 15),
    )
    schedule = daily_schedule(cfg, "june_survey")
    assert schedule is not None and schedule.timezone == "Asia/Shanghai"
    assert schedule.rrule == "DTSTART:20220621T090000\nRRULE:FREQ=DAILY;UNTIL=20220715T090000"
    assert schedule.interval is None


def test_the_registry_names_each_flow_once_and_every_obligation_has_its_flow() -> None:
    from config.flows import DATED, FLOWS, obligations_for
    from flows.registry import flow_of

    assert [flow_of(spec).name for spec in FLOWS] == [spec.name for spec in FLOWS]
    cfg = load_config(2022)
    assert {ob.key: ob.flow for ob in cfg.campaign.obligations if ob.flow not in DATED} == {}
    assert obligations_for(cfg.campaign, "quarterly_visits") == ["leader_assignment", "leader_visits"]
    assert obligations_for(cfg.campaign, "publicity") == [
        "typical_bases",
        "experience_article",
        "exchange_meeting",
    ]
    assert obligations_for(cfg.campaign, "pool_intake") == []  # rolling: taken in, never reminded


def test_calendar_preview_prints_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["calendar", "--year", "2022"]) == 0
    out = capsys.readouterr().out
    assert "■ 开展返乡入乡创业实地调研  [june_survey] 2022" in out
    assert "2022-07-01 五  第1次逾期督办" in out
    assert (
        "2022-10-28 五  提醒：截止前1个工作日" in out
    )  # base review, October — beyond the server's 100 days
    assert "2022-10-08 六  第1次逾期督办" in out  # Q3 visits: a make-up Saturday after 国庆
