"""Alembic environment: metadata from the SQLModel tables, URL from the caller or the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on the metadata)
from models.db import engine_for

config = context.config
url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    from config.settings import get_settings

    url = get_settings().db_url

target_metadata = SQLModel.metadata


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")  # models.db.migrate's, holding the migration lock
    if given is not None:
        _run(given)
        return
    with engine_for(url).connect() as connection:
        _run(connection)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
