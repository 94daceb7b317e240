"""Environment settings: where things are and how to reach them. Campaign policy lives in YAML, not here.

Every field can be set as an environment variable with the prefix CAMPAIGN_ (e.g. CAMPAIGN_DATABASE_URL)
or in a `.env` file in the working directory.
"""

from __future__ import annotations

import os
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMPAIGN_", env_file=".env", extra="ignore")

    home: Path = Field(default=Path("var"), description="working folder for the SQLite file, inbox, archive")
    database_url: str | None = None  # default: SQLite file in `home`
    config_dir: Path = CONFIG_DIR
    year: int | None = None  # default: the newest file in config/campaigns/
    # The campaign years `campaign serve` and `campaign deploy` serve, e.g. [2022, 2026] to rehearse a
    # past year beside the live one; default: this year's (and last year's until its window closes).
    serve_years: list[int] | None = None

    # Where operators download the reports folder from (set by `campaign serve`, which serves it
    # read-only behind the UI's password): artifacts link to files under it.
    reports_url: str | None = None

    # The bureaus' pages (portal/): the address every message's link starts with (what bureaus can
    # reach: behind a proxy, its public https address), and the key that signs the links. Without a key
    # one is made once in `<home>/portal-secret`; every process that sends messages or serves pages
    # (serve, workers, `campaign portal`) must share it.
    portal_url: str = "http://127.0.0.1:4202"
    portal_secret: SecretStr | None = None
    max_upload_mb: float = Field(default=50, gt=0)  # one uploaded file; a larger one is refused unread

    inbox_dir: Path | None = None
    archive_dir: Path | None = None
    mailbox_dir: Path | None = None

    # Outgoing mail: one SMTP account, e.g. smtps://user:password@smtp.example.cn:465 (SSL) or
    # smtp://127.0.0.1:2525 (a local relay). The password is a secret and is redacted everywhere.
    smtp_url: SecretStr | None = None
    mail_from: str = "返乡入乡创业基地建设行动 <noreply@localhost>"

    # Robot hosts. Government-private deployments (政务钉钉/政务微信) and tests point these elsewhere.
    dingtalk_base_url: str = "https://oapi.dingtalk.com"
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    feishu_base_url: str = "https://open.feishu.cn"

    # Timeouts and time budgets per channel are campaign policy: `delivery.channels` in the YAML.
    # Pacing: the least time between two messages to the same endpoint. A local relay takes mail as
    # fast as it comes; DingTalk and WeCom robots accept 20 messages a minute each.
    pace_email_seconds: float = Field(default=0.0, ge=0)
    pace_robot_seconds: float = Field(default=3.1, ge=0)
    pace_apprise_seconds: float = Field(default=1.0, ge=0)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'campaign.db').resolve()}"

    @property
    def inbox(self) -> Path:
        return self.inbox_dir or self.home / "inbox"

    @property
    def prefect_auth_file(self) -> Path:
        """`user:password` for the served Prefect API and UI, created by `campaign serve` if missing."""
        return self.home / "prefect-auth"

    @property
    def portal_secret_file(self) -> Path:
        return self.home / "portal-secret"

    @property
    def served_portal_file(self) -> Path:
        """The pages' address `campaign serve` serves (its port may be any): what links start with in
        every process of this home when CAMPAIGN_PORTAL_URL is not set (a `campaign deliver`, say)."""
        return self.home / "portal-url"

    @cached_property  # read once per settings (a deliverer asks for every message it sends)
    def portal_base(self) -> str:
        """What every unit's link starts with: CAMPAIGN_PORTAL_URL when set, else the address the
        local `campaign serve` serves the pages on, else the default."""
        if "portal_url" not in self.model_fields_set and self.served_portal_file.is_file():
            served = self.served_portal_file.read_text().strip()
            if served:
                return served.rstrip("/")
        return self.portal_url.rstrip("/")

    @property
    def uploads(self) -> Path:
        """Where operators put files they name in a form (besides the inbox)."""
        return self.home / "uploads"

    @property
    def archive(self) -> Path:
        return self.archive_dir or self.home / "archive"

    @property
    def reports(self) -> Path:
        """Files the product writes for people: error workbooks, published templates, exports."""
        return self.home / "reports"

    @property
    def mailbox(self) -> Path:
        return self.mailbox_dir or self.home / "mailbox"


def secret(name: str) -> str | None:
    """A named secret (robot token, apprise URL) from the environment: CAMPAIGN_SECRET_<NAME>."""
    return os.environ.get(f"CAMPAIGN_SECRET_{name}")


def known_secret_values(settings: Settings) -> list[str]:
    """Every secret value in force, so that text leaving the process can be scrubbed of them."""
    values = [v for k, v in os.environ.items() if k.startswith("CAMPAIGN_SECRET_") and v]
    if settings.smtp_url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(settings.smtp_url.get_secret_value())
        if parts.password:
            values.append(parts.password)
    if settings.portal_secret is not None:
        values.append(settings.portal_secret.get_secret_value())
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


@lru_cache
def get_settings() -> Settings:
    return Settings()
