"""Alembic owns the schema: the migrations build exactly what the models describe, on both databases."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

import models.tables  # noqa: F401
from models.db import engine_for


@pytest.mark.also_postgres
def test_migrations_match_models(env: dict[str, object]) -> None:
    engine = engine_for(str(env["db_url"]))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        tables = set(sa.inspect(conn).get_table_names())
    assert diff == []
    assert {
        "unit",
        "contact",
        "channel",
        "obligation",
        "submission",
        "outbox",
        "intake_rejection",
        "flow_run_audit",
    } <= tables


@pytest.mark.also_postgres
def test_outbox_dedupe_key_is_unique(env: dict[str, object]) -> None:
    import datetime as dt

    from models.db import insert_ignoring_duplicates, session_scope
    from models.tables import OutboxMessage, Unit

    with session_scope() as s:
        s.add(Unit(key="220000", name="吉林省", bureau="省厅", level="province"))
    row = {
        "dedupe_key": "k1",
        "unit_key": "220000",
        "kind": "reminder",
        "step": "D0",
        "channel_kind": "mailbox",
        "recipient": "mailbox",
        "subject": "s",
        "body": "b",
        "status": "pending",
        "attempts": 0,
        "created_at": dt.datetime.now(dt.UTC),
    }
    with session_scope() as s:
        assert (
            insert_ignoring_duplicates(
                s, OutboxMessage, [row, {**row, "dedupe_key": "k2"}], unique=["dedupe_key"]
            )
            == 2
        )
    with session_scope() as s:
        assert insert_ignoring_duplicates(s, OutboxMessage, [row], unique=["dedupe_key"]) == 0
