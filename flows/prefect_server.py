"""`prefect server start` as `campaign serve` runs it: Prefect's own server, with every SQLite transaction
taking the write lock when it begins.

Why: Prefect opens most write transactions DEFERRED. Under WAL a deferred transaction that has read and
then writes cannot be upgraded once another connection committed in between, and SQLite fails it at once
with "database is locked" instead of waiting its busy timeout; Prefect answers that with 503, which the
UI shows as an error toast. At 09:00, when the schedules start ~10 runs and an operator submits a form,
that was 4 of 12 run creations (measured; PrefectHQ/prefect #18934). Prefect fixes its hottest paths the
same way one by one (`with_for_update=True` in `models/deployments.py`, `events/triggers.py`); here every
transaction does, so writers queue on the lock for up to Prefect's busy timeout (60 s) and readers, which
WAL never blocks, are unaffected. PostgreSQL is untouched.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any


def immediate_sqlite_transactions() -> None:
    """Make `AioSqliteConfiguration.begin_transaction` always begin IMMEDIATE."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred = AioSqliteConfiguration.begin_transaction
    if getattr(deferred, "campaign_immediate", False):
        return

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncIterator[Any]:
        async with deferred(self, session, with_for_update=True) as transaction:
            yield transaction

    begin_transaction.campaign_immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = begin_transaction  # type: ignore[method-assign]


def main() -> None:
    """`python -m flows.prefect_server …` takes the arguments of `prefect server start …`."""
    immediate_sqlite_transactions()
    from prefect.cli import app

    sys.argv = ["prefect", "server", "start", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
