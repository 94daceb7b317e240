"""E-mail through a real SMTP server on 127.0.0.1: Chinese reminders arrive intact; a server that is
down loses nothing, and the next run delivers."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from config.settings import get_settings
from tests.helpers import free_port, outbox, set_channels

pytestmark = pytest.mark.usefixtures("prefect_harness")


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Inbox, int]]:
    port = free_port()
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CAMPAIGN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    yield handler, port
    controller.stop()


def test_chinese_reminder_arrives_by_email(env: dict[str, object], smtp: tuple[Inbox, int]) -> None:
    from flows.june import june_survey

    handler, _ = smtp
    set_channels(env["config_dir"], {"220102": [{"kind": "email", "to": "rsj@nanguan.example.cn"}]})  # type: ignore[arg-type]
    june_survey(today=dt.date(2022, 6, 23))

    assert len(handler.messages) == 1
    mail = handler.messages[0]
    assert mail["To"].addresses[0].addr_spec == "rsj@nanguan.example.cn"
    assert str(mail["Subject"]) == "【催报提醒】开展返乡入乡创业实地调研（2022年6月30日截止，剩余5个工作日）"
    body = mail.get_content()
    assert body.startswith("南关区人力资源和社会保障局：")
    assert "还剩 5 个工作日" in body and "1. 问题清单" in body
    row = next(m for m in outbox() if m.unit_key == "220102")
    assert (row.status, row.channel_kind, row.attempts) == ("sent", "email", 1)


def test_smtp_down_loses_nothing_and_next_run_delivers(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.june import june_survey
    from flows.operations import deliver_notifications

    set_channels(
        env["config_dir"],  # type: ignore[arg-type]
        {
            "220102": [{"kind": "email", "to": "a@nanguan.example.cn"}],
            "220103": [{"kind": "email", "to": "b@kuancheng.example.cn"}],
        },
    )
    port = free_port()  # nothing listens here yet
    monkeypatch.setenv("CAMPAIGN_SMTP_URL", f"smtp://127.0.0.1:{port}")
    get_settings.cache_clear()
    from tests.helpers import set_delivery

    set_delivery(env["config_dir"], retry_delays_seconds=[0], backoff_minutes=[])  # type: ignore[arg-type]

    june_survey(today=dt.date(2022, 6, 23))
    mails = [m for m in outbox() if m.channel_kind == "email"]
    assert len(mails) == 2
    # One run is one attempt, however many immediate retries it made.
    assert all(m.status == "pending" and m.attempts == 1 for m in mails)
    assert all("无法连接发信服务器" in (m.last_error or "") for m in mails)

    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        june_survey(today=dt.date(2022, 6, 23))  # same day again: decides nothing new, delivers the queue
        deliver_notifications()  # and a delivery run finds nothing left to send
    finally:
        controller.stop()
    assert sorted(m["To"].addresses[0].addr_spec for m in handler.messages) == [
        "a@nanguan.example.cn",
        "b@kuancheng.example.cn",
    ]
    mails = [m for m in outbox() if m.channel_kind == "email"]
    assert all(m.status == "sent" and m.attempts == 2 for m in mails)


def test_smtp_password_never_stored_or_logged(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from flows.june import june_survey
    from tests.helpers import set_delivery

    set_channels(env["config_dir"], {"220102": [{"kind": "email", "to": "a@nanguan.example.cn"}]})  # type: ignore[arg-type]
    set_delivery(env["config_dir"], retry_delays_seconds=[], max_attempts=1, dead_after_working_days=0)  # type: ignore[arg-type]
    monkeypatch.setenv("CAMPAIGN_SMTP_URL", f"smtps://hr%40jl.gov.cn:S3cretPassw0rd@127.0.0.1:{free_port()}")
    get_settings.cache_clear()
    june_survey(today=dt.date(2022, 6, 23))
    row = next(m for m in outbox() if m.channel_kind == "email")
    assert row.status == "dead" and row.last_error
    assert "S3cretPassw0rd" not in row.last_error
    assert "S3cretPassw0rd" not in caplog.text


class DropsAfterData(Inbox):
    """Takes the content of every mail, then, for one recipient, cuts the line instead of answering:
    the sender cannot know whether the mail arrived (it did)."""

    def __init__(self, drop_for: str) -> None:
        super().__init__()
        self.drop_for = drop_for

    async def handle_DATA(self, server, session, envelope):
        await super().handle_DATA(server, session, envelope)
        if self.drop_for in envelope.rcpt_tos:
            server.transport.abort()
        return "250 OK"


def test_a_line_cut_after_the_content_repeats_a_mail_at_most_once(env: dict[str, object]) -> None:
    """The promise is at most one repeat: a send whose outcome is unknown is not tried again in the
    same run (it was sent 6 times a run, 30 in 5 runs), once in a later run, then given up with its
    reason. The other recipient's mail goes once, whatever happens beside it."""
    from config import load_config
    from flows.june import june_survey
    from tasks.deliverer import deliver_kind

    port = free_port()
    handler = DropsAfterData("drop@nanguan.example.cn")
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        import os

        os.environ["CAMPAIGN_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
        get_settings.cache_clear()
        set_channels(
            env["config_dir"],  # type: ignore[arg-type]
            {
                "220102": [{"kind": "email", "to": "drop@nanguan.example.cn"}],
                "220103": [{"kind": "email", "to": "ok@kuancheng.example.cn"}],
            },
        )
        june_survey(today=dt.date(2022, 6, 23))  # queues both reminders and delivers them once
        campaign = load_config().campaign
        start = dt.datetime.now(dt.UTC)  # the run above delivered on the real clock
        for run in range(1, 6):  # five later delivery runs, past every back-off
            deliver_kind("email", campaign, now=start + dt.timedelta(hours=3 * run))
    finally:
        controller.stop()
        os.environ.pop("CAMPAIGN_SMTP_URL", None)
        get_settings.cache_clear()

    copies: dict[str, int] = {}
    for mail in handler.messages:
        key = f"{mail['To'].addresses[0].addr_spec} {mail['Message-ID']}"
        copies[key] = copies.get(key, 0) + 1
    dropped = [n for key, n in copies.items() if key.startswith("drop@")]
    kept = [n for key, n in copies.items() if key.startswith("ok@")]
    assert dropped == [2] and kept == [1], copies
    row = next(m for m in outbox() if m.unit_key == "220102")
    assert (row.status, row.unknown_outcomes) == ("dead", 2)
    assert "投递结果未知" in (row.last_error or "") and "不再发送" in (row.last_error or "")
    assert next(m for m in outbox() if m.unit_key == "220103").status == "sent"
