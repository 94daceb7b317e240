"""Personal data and secrets: masking what is shown or sent, redacting what must never leave.

ID-card numbers (居民身份证号码) keep their first 6 and last 4 characters, mobile numbers their first 3
and last 4, as Chinese government portals show them. Masking is applied to every rendered message
before it is stored or sent, so a template that forgets cannot leak.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# 18-character ID numbers (17 digits + digit or X), not inside a longer run of digits.
_RIC = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# Mainland mobile numbers, optionally with +86 / 86 and separators.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")


def mask_ric(number: str) -> str:
    n = number.strip()
    return n[:6] + "*" * 8 + n[-4:] if len(n) == 18 else "*" * len(n)


def mask_phone(number: str) -> str:
    digits = re.sub(r"\D", "", number)[-11:]
    return digits[:3] + "****" + digits[-4:] if len(digits) == 11 else "*" * len(digits)


def mask_personal_data(text: str) -> str:
    """Mask every ID-card and mobile number found in free text."""
    text = _RIC.sub(lambda m: m.group(1) + "*" * 8 + m.group(3)[-4:], text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret value (tokens, passwords) in text that will be logged or stored."""
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    # Tokens in URLs that were not configured as secrets still should not travel.
    text = re.sub(r"(access_token|key|token|sign|secret|password)=[^&\s'\"]+", r"\1=***", text, flags=re.I)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
