"""Units' links to their pages (models/links.py): issued, looked up, revoked and reissued; the one
place a message gets its recipient's link (`insert_links`, called by the deliverer as it sends: the
outbox keeps a placeholder, never a working link)."""

from __future__ import annotations

import datetime as dt
import logging
import secrets as random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlmodel import Session, select

from config.settings import get_settings
from models import links
from models.db import session_scope
from models.tables import UnitLink
from tasks.files import made_once

log = logging.getLogger("campaign.links")


def secret_key() -> bytes:
    """The portal's signing key: CAMPAIGN_PORTAL_SECRET, else made once in `<home>/portal-secret`."""
    settings = get_settings()
    if settings.portal_secret is not None:
        return settings.portal_secret.get_secret_value().encode()
    return _file_key(settings.portal_secret_file.resolve())


@lru_cache(maxsize=4)
def _file_key(path: Path) -> bytes:
    return made_once(path, lambda: random.token_urlsafe(32)).encode()


def _live(session: Session, unit_key: str, year: int) -> UnitLink | None:
    return session.exec(
        select(UnitLink)
        .where(UnitLink.unit_key == unit_key, UnitLink.year == year)
        .order_by(UnitLink.version.desc())  # type: ignore[attr-defined]
        .limit(1)
    ).first()


def _issue(session: Session, unit_key: str, year: int, version: int) -> str:
    value = links.token(secret_key(), unit_key, year, version)
    session.add(
        UnitLink(
            unit_key=unit_key,
            year=year,
            version=version,
            token_hash=links.token_hash(value),
            issued_at=dt.datetime.now(dt.UTC),
        )
    )
    session.flush()
    return value


def token_for(session: Session, unit_key: str, year: int) -> str | None:
    """The live token of a unit's link for the year, issued on first use; None when it is revoked
    (an operator revoked it and has not reissued one)."""
    link = _live(session, unit_key, year)
    if link is None:
        try:
            with session.begin_nested():  # two runs issuing the first link at once: one row wins
                return _issue(session, unit_key, year, 1)
        except sa.exc.IntegrityError:
            link = _live(session, unit_key, year)
            assert link is not None
    if link.revoked_at is not None:
        return None
    return links.token(secret_key(), unit_key, year, link.version)


def page_url(session: Session, unit_key: str, year: int) -> str | None:
    value = token_for(session, unit_key, year)
    if value is None:
        return None
    return f"{get_settings().portal_base}/u/{value}"


REVOKED_LINE = "（本单位链接已停用，请联系省就业服务局重新发放）"
UNAVAILABLE_LINE = "（本单位页面链接暂不可用，请联系省就业服务局）"


def insert_links(session: Session, body: str, unit_key: str) -> str:
    """A message as it is sent: the placeholder its body ends with (tasks/notify.with_page_link), if it
    is for the message's own unit, replaced by that unit's live link (issued on first use), or by a
    line saying it was revoked. Anything else that looks like one (a file name quoted) stays text."""
    found = links.placeholder_of(body, unit_key)
    if found is None:
        return body
    match, year = found
    try:
        url = page_url(session, unit_key, year) or REVOKED_LINE
    except Exception as exc:  # never the message's end: it goes out without its link
        log.warning("no page link for %s %s: %s", unit_key, year, type(exc).__name__)
        url = UNAVAILABLE_LINE
    return body[: match.start()] + url + "\n"


def operator_page_url(unit_key: str, year: int) -> str:
    """The unit's page as operators open it (behind their password): any unit, uploads on its behalf."""
    return f"{get_settings().portal_base}/operator/unit/{quote(unit_key)}?year={year}"


@dataclass(frozen=True)
class Holder:
    """Whose link a token is, and whether it still works."""

    unit_key: str
    year: int
    link_hash: str
    revoked: bool


def holder_of(value: str) -> Holder | None:
    """The unit and year a token opens (revoked or not), or None for a token that was never issued."""
    if not links.well_formed(value):
        return None
    digest = links.token_hash(value)
    with session_scope() as session:
        link = session.exec(select(UnitLink).where(UnitLink.token_hash == digest)).first()
        if link is None:
            return None
        live = _live(session, link.unit_key, link.year)
        revoked = link.revoked_at is not None or live is None or live.version != link.version
        return Holder(link.unit_key, link.year, digest, revoked)


def revoke(unit_key: str, year: int, by: str) -> bool:
    """Revoke the unit's live link; True if there was one to revoke."""
    with session_scope() as session:
        link = _live(session, unit_key, year)
        if link is None or link.revoked_at is not None:
            return False
        link.revoked_at, link.revoked_by = dt.datetime.now(dt.UTC), by
        session.add(link)
    return True


def reissue(unit_key: str, year: int) -> str:
    """A new link for the unit (the old one stops working); returns its address."""
    with session_scope() as session:
        link = _live(session, unit_key, year)
        if link is not None and link.revoked_at is None:
            link.revoked_at, link.revoked_by = dt.datetime.now(dt.UTC), "reissued"
            session.add(link)
        _issue(session, unit_key, year, (link.version if link else 0) + 1)
        url = page_url(session, unit_key, year)
    assert url is not None
    return url


def listing(year: int) -> list[dict[str, object]]:
    """Every unit's link for the year: its address (when live), version, issued and revoked times."""
    with session_scope() as session:
        rows = session.exec(
            select(UnitLink).where(UnitLink.year == year).order_by(UnitLink.unit_key, UnitLink.version)
        ).all()  # type: ignore[arg-type]
        latest: dict[str, UnitLink] = {}
        for row in rows:
            latest[row.unit_key] = row
        return [
            {
                "unit_key": key,
                "version": link.version,
                "issued_at": link.issued_at,
                "revoked_at": link.revoked_at,
                "url": page_url(session, key, year) if link.revoked_at is None else None,
            }
            for key, link in sorted(latest.items())
        ]
