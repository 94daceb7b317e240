"""The operators' password: `user:password` guarding the Prefect API and UI of `campaign serve`, the
reports site and the operators' pages of the portal.

PREFECT_SERVER_API_AUTH_STRING if IT set it; otherwise created once, at random, in `<home>/prefect-auth`
(readable only by the service's account). Never logged.
"""

from __future__ import annotations

import os
import secrets

from config.settings import get_settings


def operator_login() -> str:
    given = os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
    if given:
        return given
    path = get_settings().prefect_auth_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(f"operator:{secrets.token_urlsafe(18)}\n")
    return path.read_text().strip()
