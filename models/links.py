"""A unit's link to its page: a capability, per unit and campaign year.

The token is an HMAC of the unit, the year and the link's version under the portal's secret key: it
cannot be guessed or forged, any process that holds the key can write it into a message without
storing it, and the database keeps only its hash (a stolen database gives no working link): a message
in the outbox holds a placeholder (`placeholder`), the link is written in as it is sent. Reissuing
a link is a new version; the old token then finds no live row and gets the page that says whom to ask.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")


def token(secret: bytes, unit_key: str, year: int, version: int) -> str:
    digest = hmac.new(secret, f"unit-link|{unit_key}|{year}|{version}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def token_hash(value: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(value.encode()).hexdigest()


def well_formed(value: str) -> bool:
    """A token's shape: anything else is refused before the database is asked."""
    return bool(TOKEN.match(value))


def form_token(secret: bytes, link_hash: str) -> str:
    """The CSRF token of a page's forms: bound to its link, so a form on another site cannot post."""
    return hmac.new(secret, f"form|{link_hash}".encode(), hashlib.sha256).hexdigest()[:32]


# Only at the very end of a body: what a bureau wrote (a file name, a cell) quoted inside a message is
# never a placeholder, so a unit cannot have another unit's link written into its own receipt.
PLACEHOLDER = re.compile(r"\[\[unit-page:([^:\]\s]{1,16}):(\d{4})\]\]\n?\Z")  # keys: 220723, JL-CBS


def placeholder(unit_key: str, year: int) -> str:
    """What an outbox body ends with where its unit's link goes (tasks/links.insert_links writes it in)."""
    return f"[[unit-page:{unit_key}:{year}]]"


def placeholder_of(body: str, unit_key: str) -> tuple[re.Match[str], int] | None:
    """The placeholder a body ends with and its year, if it is for `unit_key` (the message's own unit)."""
    found = PLACEHOLDER.search(body)
    if found is None or found.group(1) != unit_key:
        return None
    return found, int(found.group(2))
