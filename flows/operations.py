"""Delivering what is queued, on its half-hourly schedule or when an operator asks (sending the given-up
messages again). The submission form is flows/submission.py."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from config import load_config
from flows.dated import run_namer
from models.clock import local_today
from tasks.audit import audited
from tasks.delivery import deliver_all, queue_dead_digest, revive_dead
from tasks.report import publish_dead_messages


@flow(
    name="deliver_notifications",
    flow_run_name=run_namer("deliver_notifications"),
    description="投递待发通知：重试此前失败的邮件和群机器人消息；多次失败且超过期限的标记为失败，"
    "列入“投递失败”表并每日汇总告知省就业服务局。勾选“重新投递失败消息”可在修正地址或配置后重新发送。",
)
def deliver_notifications(retry_dead: bool = False) -> dict[str, Any]:
    """Deliver what is due; with `retry_dead`, first give every dead message a fresh start.

    Args:
        retry_dead: 重新投递失败消息：修正收件地址或机器人配置后勾选，已停止重试的消息将重新发送
    """
    log = get_run_logger()
    cfg = load_config()
    with audited("deliver_notifications", {"retry_dead": retry_dead}) as counts:
        if retry_dead:
            counts["revived"] = revive_dead()
            log.info("重新投递 %s 条此前失败的消息", counts["revived"])
        counts["delivery"] = deliver_all(cfg.campaign)
        counts["dead_digest"] = queue_dead_digest(cfg, local_today(cfg.campaign))
        if counts["dead_digest"]:
            counts["digest_delivery"] = deliver_all(cfg.campaign)
        counts["dead"] = publish_dead_messages(cfg)
    return counts
