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


@pytest.mark.also_postgres
@pytest.mark.empty_database
def test_stored_outbox_keys_are_rewritten_to_the_one_format(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys stored before `outbox_key` existed become what it now builds for the same message, so a
    decision made again after the upgrade (today's escalation) is still recognised as sent."""
    import datetime as dt

    from alembic import command

    from models.db import alembic_config, migrate

    command.upgrade(alembic_config(db_url), "0005")
    old_to_new = {  # written by hand from the formats of 0005's code and outbox_key's
        ("escalation", "2022:june_survey:2022:220100:escalation:E1:email:a@b.cn"): (
            "escalation:2022:june_survey:2022:220100:E1:email:a@b.cn"
        ),
        ("reminder", "2022:leader_visits:2022-Q3:220723:reminder:D-5:3f2a9c0d1e:mailbox:mailbox"): (
            "reminder:2022:leader_visits:2022-Q3:220723:D-5:3f2a9c0d1e:mailbox:mailbox"
        ),
        ("overdue", "2022:leader_assignment:2022@2022-07-12:220723:overdue:E1:mailbox:mailbox"): (
            "overdue:2022:leader_assignment:2022@2022-07-12:220723:E1:mailbox:mailbox"
        ),
        ("approval_due", "approval_due:2022-07-05:first:mailbox:mailbox"): (
            "approval_due:2022:pool:2022-07-05:first:mailbox:mailbox"
        ),
        ("approval_due", "approval_due:review:2022-10-20:first:mailbox:mailbox"): (
            "approval_due:2022:review:2022-10-20:first:mailbox:mailbox"
        ),
        ("review_result", "review:2022:220723:named:mailbox:mailbox"): (
            "review_result:2022:220723:named:mailbox:mailbox"
        ),
        ("recommendation", "recommendation:220723:0123456789abcdef:mailbox:mailbox"): (
            "recommendation:2022:220723:0123456789abcdef:mailbox:mailbox"
        ),
        ("receipt", "receipt:17:abc:mailbox:mailbox"): "receipt:2022:17:abc:mailbox:mailbox",
        (
            "scorecard",
            "scorecard:2022:220100:ffff:mailbox:mailbox",
        ): "scorecard:2022:220100:ffff:mailbox:mailbox",
        ("dead_digest", "dead_digest:2022-07-06:mailbox:mailbox"): (
            "dead_digest:2022:2022-07-06:mailbox:mailbox"
        ),
    }
    engine = engine_for(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO unit (key, name, bureau, level) VALUES ('220000', '吉林省', '省厅', 'province')"
            )
        )
        for kind, key in old_to_new:
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (dedupe_key, unit_key, kind, step, channel_kind, recipient, subject,"
                    " body, status, attempts, created_at) VALUES (:key, '220000', :kind, '', 'mailbox',"
                    " 'mailbox', 's', 'b', 'sent', 1, :at)"
                ),
                {"key": key, "kind": kind, "at": dt.datetime(2022, 7, 6, 1, tzinfo=dt.UTC)},
            )
    monkeypatch.setenv("CAMPAIGN_DATABASE_URL", db_url)
    migrate(db_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(sa.text("SELECT kind || '|' || dedupe_key, dedupe_key FROM outbox")).all())
    assert sorted(stored.values()) == sorted(old_to_new.values())


@pytest.mark.also_postgres
def test_upsert_by_copy_and_merge_keeps_the_later_row_and_updates_in_place(
    env: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Large upserts COPY into a staging table and merge in one statement on PostgreSQL (here forced for
    every size); they must mean what one statement per row means on either database."""
    from sqlmodel import select

    import models.db
    from models.db import session_scope, upsert
    from models.tables import Unit, VisitNeed

    monkeypatch.setattr(models.db, "COPY_MIN_ROWS", 1)
    with session_scope() as s:
        s.add(Unit(key="220700", name="松原市", bureau="松原市人社局", level="city"))

    def need(category: str, visits: int) -> dict[str, object]:
        return {
            "year": 2022,
            "quarter": "2022-Q3",
            "city_key": "220700",
            "category": category,
            "visits": visits,
        }

    unique = ["year", "quarter", "city_key", "category"]
    with session_scope() as s:
        rows = [need("品牌打造", 1), need("销售渠道", 2), need("品牌打造", 3)]  # the same key twice
        upsert(s, VisitNeed, rows, unique=unique, update=["visits", "projects"], constants={"projects": 1})
    with session_scope() as s:
        upsert(
            s, VisitNeed, [need("销售渠道", 5)], unique=unique, update=["visits"], constants={"projects": 9}
        )
    with session_scope() as s:
        stored = {(n.category, n.visits, n.projects) for n in s.exec(select(VisitNeed)).all()}
    assert stored == {("品牌打造", 3, 1), ("销售渠道", 5, 1)}  # later row wins; projects not in `update`
