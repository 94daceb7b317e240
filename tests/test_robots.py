"""IM group robots against a real local HTTP server speaking the platforms' request and answer shapes.

DingTalk and WeCom refuse a message with HTTP 200 and a non-zero errcode; that must count as a failure,
stay queued, be retried by the next run, and be marked dead after the configured number of tries.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.settings import get_settings
from tests.helpers import outbox, set_channels, set_delivery

pytestmark = pytest.mark.usefixtures("prefect_harness")

TOKEN = "dt0ken5ecretABCDEF123456"
SIGN = "SECsign5ecret987654321"


@pytest.fixture
def robots(env: dict[str, object], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> HTTPServer:
    base = httpserver.url_for("").rstrip("/")
    for name in ("DINGTALK", "WECOM", "FEISHU"):
        monkeypatch.setenv(f"CAMPAIGN_{name}_BASE_URL", base)
    monkeypatch.setenv("CAMPAIGN_SECRET_DT_NANGUAN", TOKEN)
    monkeypatch.setenv("CAMPAIGN_SECRET_DT_NANGUAN_SIGN", SIGN)
    monkeypatch.setenv("CAMPAIGN_SECRET_WECOM_CHANGCHUN", "wecom-key-0123456789")
    monkeypatch.setenv("CAMPAIGN_SECRET_FEISHU_JILIN", "feishu-hook-abcdef")
    get_settings.cache_clear()
    set_channels(
        env["config_dir"],  # type: ignore[arg-type]
        {
            "220102": [{"kind": "dingtalk", "token": "DT_NANGUAN", "sign": "DT_NANGUAN_SIGN"}],
            "220100": [{"kind": "wecom", "token": "WECOM_CHANGCHUN"}],
            "220200": [{"kind": "feishu", "token": "FEISHU_JILIN"}],
        },
    )
    set_delivery(  # three runs, and it is given up (no age required here)
        env["config_dir"],  # type: ignore[arg-type]
        retry_delays_seconds=[],
        max_attempts=3,
        backoff_minutes=[],
        dead_after_working_days=0,
    )
    return httpserver


def _dingtalk_refuses(request: Request) -> Response:
    assert request.args["access_token"] == TOKEN
    assert request.args["timestamp"] and request.args["sign"]  # signed, as the robot's security setting asks
    payload = request.get_json()
    assert payload["msgtype"] == "text" and "南关区人力资源和社会保障局" in payload["text"]["content"]
    return Response(
        json.dumps({"errcode": 310000, "errmsg": "keywords not in content"}), content_type="application/json"
    )


def test_dingtalk_errcode_is_a_failure_retried_then_dead(
    robots: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")  # httpx logs request URLs, tokens included, at INFO
    from flows.june import june_survey
    from flows.operations import deliver_notifications

    robots.expect_request("/robot/send", method="POST").respond_with_handler(_dingtalk_refuses)
    robots.expect_request("/cgi-bin/webhook/send", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )
    robots.expect_request("/open-apis/bot/v2/hook/feishu-hook-abcdef", method="POST").respond_with_json(
        {"code": 0, "msg": "success", "data": {}}
    )

    june_survey(today=dt.date(2022, 6, 23))
    rows = {m.unit_key: m for m in outbox()}
    ding = rows["220102"]
    assert (ding.status, ding.attempts) == ("pending", 1)
    assert "errcode=310000" in (ding.last_error or "")
    assert rows["220100"].status == "sent" and rows["220200"].status == "sent"

    deliver_notifications()  # the next run retries it
    assert next(m for m in outbox() if m.unit_key == "220102").attempts == 2
    deliver_notifications()
    ding = next(m for m in outbox() if m.unit_key == "220102")
    assert (ding.status, ding.attempts) == ("dead", 3)
    deliver_notifications()  # dead is final: no fourth try
    assert len([r for r, _ in robots.log if r.path == "/robot/send"]) == 3

    # Secrets: the outbox names the secret, never its value; nothing logged holds a token.
    for m in outbox():
        for value in (TOKEN, SIGN, "wecom-key-0123456789", "feishu-hook-abcdef"):
            assert value not in " ".join(str(v) for v in m.model_dump().values())
            leaked = [
                (r.name, r.getMessage())
                for r in caplog.records
                if r.name != "werkzeug" and value in r.getMessage()
            ]
            assert not leaked, leaked
    assert ding.recipient == "DT_NANGUAN"


def test_rate_limit_answer_then_success_delivers_once(robots: HTTPServer) -> None:
    from flows.june import june_survey
    from flows.operations import deliver_notifications

    answers = [
        {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"},
        {"errcode": 0, "errmsg": "ok"},
    ]
    robots.expect_request("/robot/send", method="POST").respond_with_handler(
        lambda request: Response(json.dumps(answers.pop(0)), content_type="application/json")
    )
    robots.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    robots.expect_request("/open-apis/bot/v2/hook/feishu-hook-abcdef").respond_with_json(
        {"code": 0, "msg": "success"}
    )

    june_survey(today=dt.date(2022, 6, 23))
    deliver_notifications()
    deliver_notifications()
    ding = next(m for m in outbox() if m.unit_key == "220102")
    assert (ding.status, ding.attempts, ding.last_error) == ("sent", 2, None)
    assert len([r for r, _ in robots.log if r.path == "/robot/send"]) == 2


def test_wecom_and_feishu_refusals_and_length_limit(robots: HTTPServer) -> None:
    from flows.june import june_survey

    robots.expect_request("/robot/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    robots.expect_request("/cgi-bin/webhook/send").respond_with_json(
        {"errcode": 93000, "errmsg": "invalid webhook url"}
    )
    robots.expect_request("/open-apis/bot/v2/hook/feishu-hook-abcdef").respond_with_json(
        {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
    )
    june_survey(today=dt.date(2022, 7, 1))  # E1: 长春市 receives its own overdue notice and the escalation
    rows = [m for m in outbox() if m.channel_kind in ("wecom", "feishu")]
    assert rows and all(m.status == "pending" and m.attempts == 1 for m in rows)
    assert any("errcode=93000" in (m.last_error or "") for m in rows)
    assert any("errcode=19021" in (m.last_error or "") for m in rows)
    for request, _ in robots.log:
        if request.path == "/cgi-bin/webhook/send":
            assert len(request.get_json()["text"]["content"].encode()) <= 2048


def test_fit_to_channel_cuts_on_character_boundary() -> None:
    from models.messages import TRUNCATION_MARK, fit_to_channel

    text = "逾期单位：" + "南关区、" * 1000
    cut = fit_to_channel(text, "wecom")
    assert len(cut.encode()) <= 2048 and cut.endswith(TRUNCATION_MARK)
    assert fit_to_channel(text, "email") == text
    assert fit_to_channel("短消息", "wecom") == "短消息"


def test_any_apprise_service_as_a_channel(
    env: dict[str, object], httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kind: apprise` takes any apprise URL from a secret; here apprise's json:// to a local server."""
    from flows.june import june_survey

    host = httpserver.url_for("/hook").removeprefix("http://")
    monkeypatch.setenv("CAMPAIGN_SECRET_APPRISE_SIPING", f"json://{host}")
    get_settings.cache_clear()
    set_channels(env["config_dir"], {"220300": [{"kind": "apprise", "url": "APPRISE_SIPING"}]})  # type: ignore[arg-type]
    set_delivery(env["config_dir"], retry_delays_seconds=[], max_attempts=3, backoff_minutes=[])  # type: ignore[arg-type]
    answers = [Response("boom", status=500), Response("{}", content_type="application/json")]
    httpserver.expect_request("/hook", method="POST").respond_with_handler(lambda request: answers.pop(0))

    june_survey(today=dt.date(2022, 6, 23))
    row = next(m for m in outbox() if m.unit_key == "220300")
    assert (row.channel_kind, row.status, row.attempts) == ("apprise", "pending", 1)
    assert row.last_error and host not in row.last_error

    from flows.operations import deliver_notifications

    deliver_notifications()
    row = next(m for m in outbox() if m.unit_key == "220300")
    assert (row.status, row.attempts) == ("sent", 2)
    payload = httpserver.log[-1][0].get_json()
    assert "四平市人力资源和社会保障局" in payload["message"] and payload["title"].startswith("【催报提醒】")


def test_failed_message_waits_out_its_backoff(env: dict[str, object], robots: HTTPServer) -> None:
    from config import load_config
    from flows.june import june_survey
    from flows.operations import deliver_notifications
    from tasks.deliverer import deliver_kind

    set_delivery(env["config_dir"], retry_delays_seconds=[], max_attempts=5, backoff_minutes=[10, 60])  # type: ignore[arg-type]
    robots.expect_request("/robot/send").respond_with_json({"errcode": 310000, "errmsg": "sign not match"})
    robots.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0, "errmsg": "ok"})
    robots.expect_request("/open-apis/bot/v2/hook/feishu-hook-abcdef").respond_with_json({"code": 0})

    june_survey(today=dt.date(2022, 6, 23))
    deliver_notifications()  # too soon: the message waits 10 minutes
    calls = lambda: len([r for r, _ in robots.log if r.path == "/robot/send"])  # noqa: E731
    assert calls() == 1
    row = next(m for m in outbox() if m.unit_key == "220102")
    assert row.next_attempt_at is not None
    wait = row.next_attempt_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=9) < wait <= dt.timedelta(minutes=10)

    campaign = load_config().campaign
    deliver_kind("dingtalk", campaign, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=11))
    assert calls() == 2
    row = next(m for m in outbox() if m.unit_key == "220102")
    assert row.next_attempt_at - dt.datetime.now(dt.UTC) > dt.timedelta(minutes=59)  # type: ignore[operator]
