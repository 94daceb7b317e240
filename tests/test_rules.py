"""The campaign's rules as plain functions: working days, deadlines, steps, decisions, masking.
No database and no Prefect."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from config import load_config
from models import workdays
from models.deadlines import StepKind, calendar_for, current_step, periods, plan_steps, working_days_left
from models.planning import OpenInstance, decide
from models.privacy import mask_personal_data, mask_phone, mask_ric, redact
from models.workdays import WorkingCalendar

D = dt.date


def test_working_days_follow_2022_holidays_and_makeup_days() -> None:
    cal = WorkingCalendar()
    assert not cal.is_workday(D(2022, 6, 3))  # 端午节
    assert cal.is_workday(D(2022, 10, 8))  # a Saturday worked to make up for 国庆
    assert cal.shift(D(2022, 6, 30), -5) == D(2022, 6, 23)
    assert cal.shift(D(2022, 9, 30), 1) == D(2022, 10, 8)
    assert cal.on_or_before(D(2022, 10, 3)) == D(2022, 9, 30)


def test_unknown_year_falls_back_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    workdays._warned_years.discard(2027)
    cal = WorkingCalendar(holidays=[D(2027, 1, 1)], makeup_workdays=[D(2027, 2, 6)])
    with caplog.at_level(logging.WARNING):
        assert not cal.is_workday(D(2027, 1, 1))  # listed holiday
        assert cal.is_workday(D(2027, 2, 6))  # listed make-up Saturday
        assert cal.is_workday(D(2027, 1, 4)) and not cal.is_workday(D(2027, 1, 9))
        assert cal.shift(D(2027, 1, 8), 1) == D(2027, 1, 11)
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1


def test_june_steps_from_config() -> None:
    campaign = load_config(2022).campaign
    ob = campaign.obligation("june_survey")
    (period,) = periods(campaign, ob)
    steps = plan_steps(campaign, ob, period, calendar_for(campaign))
    assert [(s.code, s.date) for s in steps] == [
        ("kickoff", D(2022, 6, 21)),  # D-10 (06-16) falls before the notice: dropped
        ("D-5", D(2022, 6, 23)),
        ("D-1", D(2022, 6, 29)),
        ("D0", D(2022, 6, 30)),
        ("E1", D(2022, 7, 1)),
        ("E2", D(2022, 7, 8)),
        ("E3", D(2022, 7, 15)),
    ]
    assert current_step(steps, D(2022, 6, 20)) is None
    assert current_step(steps, D(2022, 6, 26)).code == "D-5"  # type: ignore[union-attr]
    assert current_step(steps, D(2022, 7, 4)).kind is StepKind.escalation  # type: ignore[union-attr]
    assert working_days_left(calendar_for(campaign), D(2022, 6, 23), D(2022, 6, 30)) == 5


def test_due_on_a_weekend_reminds_on_the_last_working_day_once() -> None:
    campaign = load_config(2022).campaign
    ob = campaign.obligation("leader_visits")
    q4 = next(p for p in periods(campaign, ob) if p.label == "2022-Q4")
    steps = plan_steps(campaign, ob, q4, calendar_for(campaign))
    assert q4.due == D(2022, 12, 31)  # a Saturday
    assert [s.code for s in steps if s.date == D(2022, 12, 30)] == ["D0"]
    assert [p.label for p in periods(campaign, ob)] == ["2022-Q3", "2022-Q4"]  # owed from July on


def test_escalation_goes_to_each_supervisor_once_listing_its_late_units() -> None:
    cfg = load_config(2022)
    units = {u.key: u for u in cfg.units}
    ob = cfg.campaign.obligation("june_survey")
    late = [
        OpenInstance(1, "220102", "2022"),
        OpenInstance(2, "220103", "2022"),
        OpenInstance(3, "220581", "2022"),
        OpenInstance(4, "220100", "2022", last_step="E1"),
    ]
    decisions = decide(cfg.campaign, ob, late, units, D(2022, 7, 1))
    summary = sorted((d.unit_key, d.kind.value, d.step) for d in decisions)
    assert summary == [
        ("220000", "escalation", "E1"),  # province: 梅河口市 and 长春市
        ("220100", "escalation", "E1"),  # 长春市: 南关区 and 宽城区
        ("220102", "overdue", "E1"),
        ("220103", "overdue", "E1"),
        ("220581", "overdue", "E1"),  # 220100 already had its E1 decided
    ]
    province = next(d for d in decisions if d.unit_key == "220000")
    assert "梅河口市" in province.message.body and "长春市" in province.message.body
    assert "南关区" not in province.message.body
    assert decide(cfg.campaign, ob, late, units, D(2022, 6, 20)) == []


def test_masking_and_redaction() -> None:
    assert mask_ric("22010219900101123X") == "220102********123X"
    assert mask_phone("138 1234 5678") == "138****5678"
    # Landlines keep their area code (长春 0431, 北京 010) and the last 4 digits
    assert mask_phone("0431-85123456") == "0431-****3456"
    assert mask_phone("010 6512 3456") == "010-****3456"
    assert mask_personal_data("值班电话 0431-85123456。") == "值班电话 0431-****3456。"
    text = mask_personal_data("负责人 22010219900101123x，电话13812345678，信用代码 91220101MA17XXXX3X")
    assert "19900101" not in text and "1234" not in text.split("电话")[1][:7]
    assert "91220101MA17XXXX3X" in text  # organisation codes are not personal data
    assert (
        redact("POST https://h/robot/send?access_token=abc&x=1 failed", [])
        == "POST https://h/robot/send?access_token=***&x=1 failed"
    )
    assert "pw123" not in redact("smtps://user:pw123@smtp.example.cn", [])
    assert redact("token tok-SECRET-1 refused", ["tok-SECRET-1"]) == "token *** refused"


def test_a_runs_summary_is_a_chinese_sentence() -> None:
    from models.messages import run_summary

    counts = {
        "synced": 3,
        "intake": {"accepted": 2, "duplicates": 0, "rejected": 1},
        "notifications": {"kickoff": 70, "queued": 70},
        "delivery": {"sent": 69, "retrying": 1},
        "overview": {"units": 70},
    }
    assert run_summary("三(一)实地调研", dt.date(2022, 6, 21), counts) == (
        "三(一)实地调研 2022-06-21 办理完毕。通知：启动通知 70，新入队 70；投递：已发送 69，待重试 1；"
        "收件：受理 2，退回 1。"
    )
    pool = {"files": [{"file": "a.xlsx"}, {"file": "b.csv", "refused": "不是申报表"}], "proposals_open": 2}
    assert run_summary("三(三)培育库入库", dt.date(2022, 7, 5), pool) == (
        "三(三)培育库入库 2022-07-05 办理完毕。申报表 2 个（退回 1 个）；待审批推荐 2 项。"
    )
    assert run_summary("三(四)季度走访", dt.date(2022, 7, 6), {}) == (
        "三(四)季度走访 2022-07-06 办理完毕。本日无新的通知、投递或收件。"
    )


def test_a_message_ends_with_the_placeholder_of_its_own_units_link() -> None:
    """The outbox keeps no working link: a body ends with its unit's placeholder (长白山管委会's key has
    a dash), the one place the deliverer writes a link in. One quoted inside the text (a file a bureau
    named so) or another unit's is never a placeholder."""
    from models import links

    own = f"请按期报送。\n本单位办理页面：{links.placeholder('JL-CBS', 2026)}\n"
    found = links.placeholder_of(own, "JL-CBS")
    assert (
        found is not None and found[1] == 2026 and own[: found[0].start()] == "请按期报送。\n本单位办理页面："
    )
    assert links.placeholder_of(own, "220723") is None  # not this unit's message
    quoted = f"材料：{links.placeholder('220722', 2022)}.pdf。\n本单位办理页面：{links.placeholder('220723', 2022)}\n"
    [match, year] = links.placeholder_of(quoted, "220723") or (None, 0)
    assert match is not None and match.group(1) == "220723" and year == 2022
    assert links.placeholder_of(f"材料：{links.placeholder('220722', 2022)}.pdf。\n", "220722") is None
