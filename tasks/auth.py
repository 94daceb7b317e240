"""The operators' password: `user:password` guarding the Prefect API and UI of `campaign serve`, the
reports site and the operators' pages of the portal.

PREFECT_SERVER_API_AUTH_STRING if IT set it; otherwise created once, at random, in `<home>/prefect-auth`
(readable only by the service's account). Never logged.
"""

from __future__ import annotations

import os
import secrets

from config.settings import get_settings
from tasks.files import made_once


def operator_login() -> str:
    given = os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
    if given:
        return given
    return made_once(get_settings().prefect_auth_file, lambda: f"operator:{secrets.token_urlsafe(18)}")
