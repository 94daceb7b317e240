"""The year's lifecycle and runs that cannot do harm (issue 13): next year's file from this year's, its
working days checked loudly, and a dated run for a day outside its campaign refused with nothing sent.

Expectations are written by hand from the 2022 file, the State Council's 2026 arrangement and the
statutory holidays of 2027 (its make-up working days were not published when this was written)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from tests.helpers import outbox

D = dt.date


def test_new_year_moves_every_date_to_its_place_and_says_what_to_review(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    folder = Path(str(env["config_dir"])) / "campaigns"
    assert main(["new-year", "2027"]) == 0
    text = (folder / "2027.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    assert data["year"] == 2027 and data["draft"] is True
    assert data["title"] == "2027年度返乡入乡创业基地建设行动"
    assert data["notice"].startswith("待审核：2027年度通知文号")
    by_key = {ob["key"]: ob["schedule"] for ob in data["obligations"]}
    # 2022-06-21 was June's 14th working day; June 2027's 14th (端午 Wed 06-09 off) is Mon 06-21.
    # Month ends stay month ends.
    assert by_key["june_survey"] == {"kind": "once", "kickoff": D(2027, 6, 21), "due": D(2027, 6, 30)}
    # 2022-09-01 was September's first working day (Thu); in 2027 that is Wed 09-01
    assert by_key["review_plan"]["kickoff"] == D(2027, 9, 1)
    assert by_key["funds_tracking"]["dates"] == [D(2027, 9, 30), D(2027, 12, 31)]
    assert data["application_window"] == {"start": D(2026, 6, 1), "end": D(2027, 5, 31)}
    assert "# 待审核：由 2022-06-21、2022-06-30 顺延" in text
    assert "quotas:  # 待审核：沿用 2022 年度的值" in text
    # 2027 is past chinese-calendar 1.11.0: the statutory holidays come from `holidays`, the make-up
    # days are unknown and flagged
    days = data["working_days"]
    assert days["source"] == "holidays-partial" and days["makeup_workdays_known"] is False
    assert {D(2027, 1, 1), D(2027, 2, 6), D(2027, 6, 9), D(2027, 9, 15), D(2027, 10, 1)} <= set(
        days["holidays"]
    )
    assert days["makeup_workdays"] == []

    assert main(["new-year", "2027"]) == 2  # never overwritten by accident
    capsys.readouterr()

    assert main(["check", "--year", "2027"]) == 0
    out, err = capsys.readouterr()
    assert "活动期：2027-06-21 至" in out
    assert "2027 年度配置是草稿" in err
    assert "警告：2027 年的调休上班日未知" in err

    assert main(["calendar", "--year", "2027"]) == 0
    out, _ = capsys.readouterr()
    assert "节假日：配置文件（holidays-partial，调休上班日未知，日期待调整）" in out
    assert "2027-10-01 休息日（配置文件）" in out
    assert main(["calendar", "--year", "2027", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    holidays = set(days["holidays"])
    steps = [D.fromisoformat(r["date"]) for r in rows if r["kind"] in ("kickoff", "reminder", "escalation")]
    assert steps and all(d.weekday() < 5 and d not in holidays for d in steps)


def test_new_year_for_a_year_the_library_knows(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    assert main(["new-year", "2026"]) == 0
    data = yaml.safe_load(
        (Path(str(env["config_dir"])) / "campaigns" / "2026.yaml").read_text(encoding="utf-8")
    )
    assert data["working_days"]["source"] == "chinese-calendar"
    assert data["working_days"]["makeup_workdays_known"] is True
    # 2022-06-21 was June's 14th working day (端午 06-03 off); June 2026's 14th is Thu 06-18 (1–5, 8–12,
    # 15–18; 端午 is Fri 06-19). 06-30 was June's last day and stays so.
    june = next(ob["schedule"] for ob in data["obligations"] if ob["key"] == "june_survey")
    assert june == {"kind": "once", "kickoff": D(2026, 6, 18), "due": D(2026, 6, 30)}
    capsys.readouterr()
    assert main(["check", "--year", "2026"]) == 0
    out, err = capsys.readouterr()
    assert "2026 年节假日与调休：chinese-calendar" in out and "调休上班日未知" not in err


@pytest.mark.usefixtures("prefect_harness")
def test_a_run_outside_its_campaign_refuses_and_sends_nothing(
    env: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    from flows.cli import main

    inbox = Path(str(env["home"])) / "inbox" / "june_survey"
    inbox.mkdir(parents=True)
    (inbox / "南关区-调研材料.pdf").write_bytes(b"%PDF-1.4")
    # Today (late 2026) is years after the 2022 campaign: the CLI's default date is refused.
    assert main(["run", "june_survey", "--year", "2022"]) == 2
    err = capsys.readouterr().err
    assert "不在2022年度活动期内（2022-06-21 至 2023-02-16，2022年度活动已结束）" in err
    assert "本次运行未收件、未发送任何通知" in err
    # the day after the window closes, and the day before it opens
    assert main(["run", "june_survey", "--today", "2023-02-17"]) == 2
    assert main(["run", "standards_filing", "--today", "2022-06-20"]) == 2
    assert "2022年度活动尚未开始" in capsys.readouterr().err
    assert outbox() == [] and (inbox / "南关区-调研材料.pdf").exists()
    # the window's last day is still served
    assert main(["run", "june_survey", "--today", "2023-02-16", "--dry-run"]) == 0
    assert outbox() == []


def test_serve_takes_this_year_and_last_year_until_its_window_closes(env: dict[str, object]) -> None:
    """With 2022, 2026 and 2027 files: 2026's window closes 30 days after its last escalation (its
    year-end duties escalate in January 2027), so in January 2027 both years are served, in March only
    2027; with no file for the year, the newest is served for rehearsal."""
    from config import load_config
    from flows.cli import main
    from flows.registry import deployments, served_years
    from models.deadlines import campaign_window

    assert served_years(D(2026, 11, 29)) == [2022]  # only 2022 exists: served for rehearsal and replay
    assert main(["new-year", "2026"]) == 0 and main(["new-year", "2027"]) == 0
    closes = campaign_window(load_config(2026).campaign).closes
    assert closes.year == 2027 and closes.month == 2
    assert served_years(D(2026, 11, 29)) == [2026]
    assert served_years(D(2027, 1, 10)) == [2026, 2027]
    assert served_years(closes + dt.timedelta(days=1)) == [2027]

    served = deployments([load_config(2026), load_config(2027)])
    names = [d.name for d in served]
    assert "2026年·01 三(一)实地调研" in names and "2027年·01 三(一)实地调研" in names
    assert names.count("登记线下报送") == 1 and names.count("通知投递与重发") == 1
    june_2027 = next(d for d in served if d.name == "2027年·01 三(一)实地调研")
    assert june_2027.parameters == {"campaign_year": 2027}
