"""The transports behind the outbox: e-mail over SMTP, DingTalk/WeCom/Feishu group robots, any apprise
URL, and the local mailbox folder. Each `send` either returns or raises DeliveryError with a reason that
holds no secret.

Why not apprise for all of them (measured with apprise 2.0.1, see README "Notifications"):
- apprise's e-mail plugin opens a new connection and builds a new TLS context per message (~20 ms
  each, even for a plain local relay), an order of magnitude slower than one SMTP session per batch;
- its DingTalk, WeCom and Feishu plugins treat HTTP 200 as success although the platforms reject
  messages with HTTP 200 and a non-zero `errcode`/`code`, and their hosts are fixed, so a
  government-private deployment (政务钉钉/政务微信) cannot be reached.
apprise stays the channel for every other service it supports (`kind: apprise`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import mimetypes
import re
import smtplib
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Protocol

import httpx

from config.errors import DeliveryError
from config.settings import Settings, get_settings, known_secret_values, secret
from models.messages import fit_to_channel
from models.outbox import message_id
from models.privacy import redact
from tasks.files import copy_atomically, write_text


class _RedactTokens(logging.Filter):
    """httpx logs each request's URL at INFO; every robot's token is part of its URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.msg % record.args
            record.args = None
        record.msg = redact(str(record.msg), known_secret_values(get_settings()))
        return True


logging.getLogger("httpx").addFilter(_RedactTokens())


@dataclass(frozen=True)
class Outgoing:
    id: int
    unit_key: str
    unit_name: str
    channel_kind: str
    recipient: str  # e-mail address, or the name of the secret that holds the token
    subject: str
    body: str
    sign_secret: str | None = None
    attempts: int = 0  # delivery runs that tried it so far
    attachment: str | None = None  # a file path: attached to e-mail, named in other channels
    dedupe_key: str = ""  # the outbox row's unique key: with the id, its stable Message-ID
    queued_at: dt.datetime | None = None  # queued, or revived by an operator: what its age counts from
    unknown_outcomes: int = 0  # sends so far that may or may not have arrived

    @property
    def text(self) -> str:
        """The body, with the attachment named for channels that cannot carry a file."""
        if not self.attachment:
            return self.body
        name = Path(self.attachment).name
        head, _, last = self.body.rstrip().rpartition("\n")
        if head and "http" in last:  # the unit's page link stays last: the file is there too
            return f"{head}\n附件《{name}》随邮件发送，也可在本单位办理页面下载：\n{last}\n"
        return f"{self.body}\n附件《{name}》随邮件发送；未配置邮箱的单位请向省就业服务局索取。\n"


class Transport(Protocol):
    def send(self, msg: Outgoing) -> None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------- e-mail
@dataclass(frozen=True)
class SmtpAccount:
    host: str
    port: int
    security: str  # plain | starttls | ssl
    user: str | None
    password: str | None
    sender: str

    @classmethod
    def from_url(cls, url: str, default_sender: str) -> SmtpAccount:
        """smtp:// or mailto:// (plain, STARTTLS with ?mode=starttls); smtps:// or mailtos:// (SSL, 465)."""
        parts = urllib.parse.urlsplit(url)
        query = dict(urllib.parse.parse_qsl(parts.query))
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "mailto", "smtps", "mailtos"):
            raise DeliveryError("email", f"CAMPAIGN_SMTP_URL: unsupported scheme {scheme!r}", retryable=False)
        ssl_mode = scheme in ("smtps", "mailtos") or query.get("mode") == "ssl"
        security = "ssl" if ssl_mode else ("starttls" if query.get("mode") == "starttls" else "plain")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if security == "ssl" else 587 if security == "starttls" else 25),
            security=security,
            user=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            sender=query.get("from", default_sender),
        )


class _Tracking:
    """An SMTP session that knows whether the current message's content went out (DATA began): after
    that, a cut line leaves the outcome unknown."""

    content_sent = False

    def data(self, msg: bytes | str) -> tuple[int, bytes]:
        self.content_sent = True
        return super().data(msg)  # type: ignore[misc]


class _SMTP(_Tracking, smtplib.SMTP):
    pass


class _SMTPSSL(_Tracking, smtplib.SMTP_SSL):
    pass


UNKNOWN = "发信服务器在收到邮件内容后断开，投递结果未知"


class SmtpTransport:
    """One SMTP session for a whole delivery batch. A session the server closed while idle is opened
    again once, before anything of the message was sent; after its content went out, a cut line is an
    unknown outcome, never a reason to send it again here."""

    def __init__(self, account: SmtpAccount, timeout: float) -> None:
        self.account = account
        self.timeout = timeout
        self._smtp: _SMTP | _SMTPSSL | None = None

    def _connect(self) -> _SMTP | _SMTPSSL:
        a = self.account
        try:
            if a.security == "ssl":
                smtp: _SMTP | _SMTPSSL = _SMTPSSL(
                    a.host,
                    a.port,
                    timeout=self.timeout,
                    context=ssl.create_default_context(),
                    local_hostname="localhost",
                )
            else:
                smtp = _SMTP(a.host, a.port, timeout=self.timeout, local_hostname="localhost")
                if a.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if a.user and a.password:
                smtp.login(a.user, a.password)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError("email", f"发信服务器拒绝登录 (SMTP {exc.smtp_code})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(
                "email", f"无法连接发信服务器 {a.host}:{a.port}: {type(exc).__name__}"
            ) from None
        return smtp

    def _message(self, msg: Outgoing) -> EmailMessage:
        """The mail, or a permanent DeliveryError when this message can never be built."""
        attachment = _attachment(msg)
        mail = EmailMessage()
        name, addr = parseaddr(self.account.sender)
        try:
            mail["From"] = formataddr((name, addr)) if name else addr
            mail["To"] = Address(msg.unit_name, addr_spec=msg.recipient)
            mail["Subject"] = msg.subject
        except (ValueError, TypeError, IndexError, HeaderParseError) as exc:
            raise DeliveryError("email", f"邮件头无法生成：{type(exc).__name__}", retryable=False) from None
        # The same on every try: a mail system that got it before a crash drops the repeat.
        mail["Message-ID"] = message_id(
            msg.id, msg.dedupe_key, addr.rsplit("@", 1)[-1] if "@" in addr else ""
        )
        mail["Date"] = dt.datetime.now(dt.UTC)
        mail.set_content(msg.body, charset="utf-8")
        if attachment is not None:
            maintype, subtype = (
                mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
            ).split("/")
            mail.add_attachment(
                attachment.read_bytes(), maintype=maintype, subtype=subtype, filename=attachment.name
            )
        return mail

    def send(self, msg: Outgoing) -> None:
        mail = self._message(msg)
        for attempt in (1, 2):
            reused = self._smtp is not None
            if self._smtp is None:
                self._smtp = self._connect()
            smtp = self._smtp
            smtp.content_sent = False
            try:
                refused = smtp.send_message(mail)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._smtp = None
                if smtp.content_sent:
                    raise DeliveryError("email", UNKNOWN, unknown=True) from None
                if reused and attempt == 1:  # the idle session had been closed: nothing of this went out
                    continue
                raise DeliveryError("email", f"发信服务器断开连接: {type(exc).__name__}") from None
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                raise DeliveryError(  # 5xx: the address is wrong, asking again will not help
                    "email",
                    f"收件地址被拒绝 (SMTP {', '.join(map(str, codes))})",
                    retryable=not all(c >= 500 for c in codes),
                ) from None
            except smtplib.SMTPResponseException as exc:  # the server answered: not accepted
                raise DeliveryError(
                    "email", f"发信服务器拒收 (SMTP {exc.smtp_code})", retryable=exc.smtp_code < 500
                ) from None
            except smtplib.SMTPException as exc:
                self._smtp = None
                raise DeliveryError("email", f"发送失败: {type(exc).__name__}") from None
            if refused:
                raise DeliveryError("email", "收件地址被拒绝")
            return

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None


# ---------------------------------------------------------------- IM robots
def _sign(secret_value: str, timestamp: str) -> str:
    digest = hmac.new(secret_value.encode(), f"{timestamp}\n{secret_value}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _feishu_sign(secret_value: str, timestamp: str) -> str:
    digest = hmac.new(f"{timestamp}\n{secret_value}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class RobotTransport:
    """DingTalk, WeCom and Feishu group robots: the platforms' own request and answer shapes.

    Both HTTP errors and HTTP 200 answers with a non-zero `errcode` (DingTalk, WeCom) or `code`
    (Feishu) are failures: that is how the platforms refuse a message (rate limit, keyword, signature).
    """

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.base = {
            "dingtalk": settings.dingtalk_base_url.rstrip("/"),
            "wecom": settings.wecom_base_url.rstrip("/"),
            "feishu": settings.feishu_base_url.rstrip("/"),
        }
        self.client = httpx.Client(timeout=timeout)

    def _request(self, msg: Outgoing) -> tuple[str, dict[str, str], dict[str, object]]:
        token = secret(msg.recipient)
        if not token:
            raise DeliveryError(msg.channel_kind, f"未配置密钥 CAMPAIGN_SECRET_{msg.recipient}")
        sign_value = secret(msg.sign_secret) if msg.sign_secret else None
        if msg.sign_secret and not sign_value:
            raise DeliveryError(msg.channel_kind, f"未配置密钥 CAMPAIGN_SECRET_{msg.sign_secret}")
        text = fit_to_channel(f"{msg.subject}\n\n{msg.text}", msg.channel_kind)
        base = self.base[msg.channel_kind]
        if msg.channel_kind == "dingtalk":
            params = {"access_token": token}
            if sign_value:
                ts = str(int(time.time() * 1000))
                params |= {"timestamp": ts, "sign": _sign(sign_value, ts)}
            return f"{base}/robot/send", params, {"msgtype": "text", "text": {"content": text}}
        if msg.channel_kind == "wecom":
            return (
                f"{base}/cgi-bin/webhook/send",
                {"key": token},
                {"msgtype": "text", "text": {"content": text}},
            )
        payload: dict[str, object] = {"msg_type": "text", "content": {"text": text}}
        if sign_value:
            ts = str(int(time.time()))
            payload |= {"timestamp": ts, "sign": _feishu_sign(sign_value, ts)}
        return f"{base}/open-apis/bot/v2/hook/{urllib.parse.quote(token)}", {}, payload

    def send(self, msg: Outgoing) -> None:
        url, params, payload = self._request(msg)
        kind = msg.channel_kind
        try:
            response = self.client.post(url, params=params, json=payload)
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError) as exc:
            # the request went out (or part of it): the robot may have posted the message
            raise DeliveryError(
                kind, f"请求已发出但未收到应答，投递结果未知: {type(exc).__name__}", unknown=True
            ) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(kind, f"请求失败: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise DeliveryError(kind, f"HTTP {response.status_code}")
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise DeliveryError(kind, "应答不是 JSON（地址是否指向机器人接口？）", retryable=False) from None
        if not isinstance(answer, dict):
            shape = type(answer).__name__ if answer is not None else "null"
            raise DeliveryError(kind, f"应答格式无法识别（{shape}）", retryable=False)
        code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
        if code not in (0, "0", None):
            reason = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
            raise DeliveryError(kind, f"平台拒收 errcode={code} {reason}".strip())

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------- apprise
class AppriseTransport:
    """Any service apprise supports; the URL is a named secret. apprise's own throttle is turned off
    (pacing belongs to the delivery loop) and its socket timeouts are the channel's."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    def send(self, msg: Outgoing) -> None:
        import apprise

        url = secret(msg.recipient)
        if not url:
            raise DeliveryError("apprise", f"未配置密钥 CAMPAIGN_SECRET_{msg.recipient}")
        notifier = apprise.Apprise()
        if not notifier.add(url):
            raise DeliveryError(
                "apprise", f"CAMPAIGN_SECRET_{msg.recipient} 不是有效的 apprise 地址", retryable=False
            )
        for service in notifier:
            service.request_rate_per_sec = 0
            service.socket_connect_timeout = service.socket_read_timeout = self.timeout
        body = fit_to_channel(msg.text, "apprise")
        with apprise.LogCapture(level=apprise.logging.WARNING) as logs:
            ok = notifier.notify(body=body, title=msg.subject)
        if not ok:
            lines = [ln for ln in logs.getvalue().splitlines() if ln.strip()]
            raise DeliveryError("apprise", lines[-1] if lines else "发送失败")

    def close(self) -> None:
        return None


# ---------------------------------------------------------------- local mailbox
class MailboxTransport:
    """A folder per unit with one text file per message: the offline default a person can read."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, msg: Outgoing) -> None:
        safe_name = re.sub(r"[\\/:*?\"<>|\s]", "", msg.unit_name)
        target = self.folder / f"{msg.unit_key}-{safe_name}"
        target.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d-%H%M%S")
        path = target / f"{stamp}-{msg.id:06d}.txt"
        text = f"收件单位：{msg.unit_name}\n主题：{msg.subject}\n\n{msg.body}"
        attachment = _attachment(msg)
        if attachment is not None:
            attached = target / f"{stamp}-{msg.id:06d}-{attachment.name}"
            copy_atomically(attachment, attached)
            text += f"\n附件：{attached.name}\n"
        write_text(path, text)  # a reader never sees half a message

    def close(self) -> None:
        return None


def _attachment(msg: Outgoing) -> Path | None:
    """The message's attachment, or a permanent failure if it has gone (it will not come back)."""
    if not msg.attachment:
        return None
    path = Path(msg.attachment)
    if not path.is_file():
        raise DeliveryError(msg.channel_kind, f"附件已不存在：{path.name}", retryable=False)
    return path


def transport_for(kind: str, settings: Settings, timeout: float) -> Transport:
    if kind == "email":
        if settings.smtp_url is None:
            raise DeliveryError("email", "未配置发信服务器 CAMPAIGN_SMTP_URL", retryable=False)
        account = SmtpAccount.from_url(settings.smtp_url.get_secret_value(), settings.mail_from)
        return SmtpTransport(account, timeout)
    if kind in ("dingtalk", "wecom", "feishu"):
        return RobotTransport(settings, timeout)
    if kind == "apprise":
        return AppriseTransport(timeout)
    if kind == "mailbox":
        return MailboxTransport(settings.mailbox)
    raise DeliveryError(kind, f"unknown channel kind {kind!r}", retryable=False)


def pace_seconds(kind: str, settings: Settings) -> float:
    if kind == "email":
        return settings.pace_email_seconds
    if kind in ("dingtalk", "wecom", "feishu"):
        return settings.pace_robot_seconds
    if kind == "apprise":
        return settings.pace_apprise_seconds
    return 0.0
