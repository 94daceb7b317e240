"""Personal data and secrets: masking what is shown or sent, redacting what must never leave.

ID-card numbers (居民身份证号码) keep their first 6 and last 4 characters, mobile numbers their first 3
and last 4, landlines their area code and last 4, as Chinese government portals show them. Masking is applied to every rendered message
before it is stored or sent, so a template that forgets cannot leak.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# 18-character ID numbers (17 digits + digit or X), not inside a longer run of digits.
_RIC = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[0-9Xx])(?![0-9A-Za-z])")
# Mainland mobile numbers, optionally with +86 / 86 and separators.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")
# Landlines written with their area code and a separator: 0431-85123456, 010 12345678.
_LANDLINE = re.compile(r"(?<![\d-])(0\d{2,3})[- ](\d{7,8})(?!\d)")
# Beijing, Tianjin, Shanghai, Chongqing and the big cities of 02x have 3-digit area codes; others 4.
_THREE_DIGIT_AREAS = frozenset({"010", "020", "021", "022", "023", "024", "025", "027", "028", "029"})


def mask_ric(number: str) -> str:
    n = number.strip()
    return n[:6] + "*" * 8 + n[-4:] if len(n) == 18 else "*" * len(n)


def _mask_landline(area: str, local: str) -> str:
    return f"{area}-{'*' * (len(local) - 4)}{local[-4:]}"


def mask_phone(number: str) -> str:
    """A mobile keeps its first 3 and last 4 digits; a landline its area code and last 4 digits
    (0431-85123456 → 0431-****3456)."""
    digits = re.sub(r"\D", "", number)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) == 11 and digits[0] == "1":
        return digits[:3] + "****" + digits[-4:]
    if digits.startswith("0") and 10 <= len(digits) <= 12:
        area = digits[:3] if digits[:3] in _THREE_DIGIT_AREAS else digits[:4]
        return _mask_landline(area, digits[len(area) :])
    return "*" * len(digits)


def mask_personal_data(text: str) -> str:
    """Mask every ID-card, mobile and landline number found in free text."""
    text = _RIC.sub(lambda m: m.group(1) + "*" * 8 + m.group(3)[-4:], text)
    text = _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
    return _LANDLINE.sub(lambda m: _mask_landline(m.group(1), m.group(2)), text)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace every known secret value (tokens, passwords) in text that will be logged or stored."""
    for value in secrets:
        if value:
            text = text.replace(value, "***")
    # Tokens in URLs that were not configured as secrets still should not travel.
    text = re.sub(r"(access_token|key|token|sign|secret|password)=[^&\s'\"]+", r"\1=***", text, flags=re.I)
    return re.sub(r"(://[^:/@\s]+:)[^@\s]+@", r"\1***@", text)
