"""The engine, sessions and schema migrations (Alembic owns the schema from its first version)."""

from __future__ import annotations

import csv
import datetime as dt
import fcntl
import io
import json
import sys
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from itertools import compress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel, create_engine

from config.settings import get_settings

if TYPE_CHECKING:  # pandas and Alembic load on first use: a deliverer's process needs neither
    import pandas as pd
    from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@lru_cache(maxsize=8)
def engine_for(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode, much faster
            cur.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def get_engine() -> sa.Engine:
    return engine_for(get_settings().db_url)


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: one transaction."""
    with Session(engine_for(url) if url else get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["url"] = url or get_settings().db_url
    return cfg


MIGRATION_LOCK = 4_172_022  # PostgreSQL advisory lock key: any number, the same in every process


def migrate(url: str | None = None) -> None:
    """Bring the schema to the newest migration (creates it on an empty database).

    Under a lock, so two first runs at once (the schedule and an operator, two workers) both succeed:
    the second waits, then finds nothing left to do. PostgreSQL: an advisory lock held on the migrating
    connection. SQLite: an exclusive lock on a file beside the database.
    """
    from alembic import command

    url = url or get_settings().db_url
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:":
            command.upgrade(alembic_config(url), "head")
            return
        lock_path = Path(path).with_name(Path(path).name + ".migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                command.upgrade(alembic_config(url), "head")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        for file in Path(path).parent.glob(Path(path).name + "*"):
            file.chmod(0o600)  # the database holds full ID numbers: only the service reads it
        return
    with engine_for(url).connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
        connection.commit()
        try:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            connection.commit()


def insert_new(
    session: Session, model: type[SQLModel], rows: Iterable[dict[str, Any]], *, unique: list[str]
) -> list[Any]:
    """One INSERT of many rows; rows whose unique key already exists are skipped. Returns the new keys."""
    rows = list(rows)
    if not rows:
        return []
    table = model.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    pk = next(iter(table.primary_key.columns))
    stmt = insert(table).on_conflict_do_nothing(index_elements=unique).returning(pk)
    # RETURNING says what was really inserted; rowcount is unreliable for executemany.
    return [row[0] for row in session.execute(stmt, rows).all()]


def insert_ignoring_duplicates(
    session: Session, model: type[SQLModel], rows: Iterable[dict[str, Any]], *, unique: list[str]
) -> int:
    """`insert_new`, counted."""
    return len(insert_new(session, model, rows, unique=unique))


def one_of(column: sa.ColumnElement[Any], values: list[Any], dialect: str) -> sa.ColumnElement[bool]:
    """`column IN (values)` for thousands of values: on PostgreSQL one array parameter (`= ANY`), which
    costs nothing to compile, instead of a parameter per value."""
    if dialect == "postgresql":
        return column == sa.func.any(sa.bindparam(None, values, type_=postgresql.ARRAY(column.type)))
    if len(values) > 1000 and all(isinstance(v, str | int) for v in values):
        # SQLite: one JSON parameter, read by json_each, instead of a parameter per value (a 50,000-row
        # chunk would pass the 32,766 parameters SQLite allows by default)
        listed = sa.func.json_each(sa.bindparam(None, json.dumps(values), type_=sa.String)).table_valued(
            "value"
        )
        return column.in_(sa.select(listed.c.value))
    return column.in_(values)


COPY_MIN_ROWS = 1000  # PostgreSQL: from this many rows, COPY into a staging table and merge once
COPY_CHUNK_ROWS = 5000  # rows formatted per piece of a COPY's data


def _copy_rows(conn: sa.Connection, table_name: str, names: list[str], columns: list[list[Any]]) -> None:
    """PostgreSQL: the rows (column lists) into `table_name` by one COPY.

    The rows are formatted COPY_CHUNK_ROWS at a time and handed to psycopg's queued writer, whose thread
    sends one chunk while this one formats the next: the server's work on the rows (foreign keys,
    indexes) overlaps the formatting instead of following it.
    """
    from psycopg.copy import QueuedLibpqWriter

    quoted = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
    # The rows as CSV by the csv module's C writer (a psycopg call per row, or pandas' to_csv of object
    # columns, cost more). NULL is an unquoted marker no submitted value can be, as "" is an empty text.
    null = f"NULL-{uuid.uuid4().hex}"
    columns = [[null if v is None or v != v else v for v in values] for values in columns]  # NaN too
    rows = list(zip(*columns, strict=True))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    options = f"FORMAT csv, NULL '{null}'"
    sql = f"COPY {table_name} ({quoted}) FROM STDIN WITH ({options})"
    with cursor, cursor.copy(sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for start in range(0, len(rows), COPY_CHUNK_ROWS):
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(rows[start : start + COPY_CHUNK_ROWS])
            copy.write(buffer.getvalue())


def _upsert_by_copy(
    conn: sa.Connection,
    table: sa.Table,
    names: list[str],
    columns: list[list[Any]],
    unique: list[str],
    update: list[str],
    unless_equal: str | None,
) -> None:
    """PostgreSQL, many rows: COPY them into a temporary table, then one INSERT … SELECT … ON CONFLICT.

    The same key twice in one batch is allowed, as in one statement per row: the later row wins.
    """
    stage = sa.Table(
        f"_stage_{table.name}",
        sa.MetaData(),
        *(sa.Column(n, table.c[n].type) for n in names),
        sa.Column("_ordinal", sa.Integer),
        prefixes=["TEMPORARY"],
    )
    stage.create(conn)
    try:
        _copy_rows(conn, stage.name, [*names, "_ordinal"], [*columns, list(range(len(columns[0])))])
        keys = [stage.c[u] for u in unique]
        latest = (
            sa.select(*(stage.c[n] for n in names))
            .distinct(*keys)
            .order_by(*keys, stage.c["_ordinal"].desc())
        )
        stmt = postgresql.insert(table).from_select(names, latest)
        stmt = stmt.on_conflict_do_update(
            index_elements=unique,
            set_={c: stmt.excluded[c] for c in update},
            where=(table.c[unless_equal] != stmt.excluded[unless_equal]) if unless_equal else None,
        )
        conn.execute(stmt)
    finally:
        stage.drop(conn)


def _temporal(column_type: sa.types.TypeEngine[Any]) -> bool:
    inner = column_type.impl_instance if isinstance(column_type, sa.types.TypeDecorator) else column_type
    return isinstance(inner, sa.Date | sa.DateTime)


def _as_sqlite_text(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """sqlite3 turns each date and datetime it binds into ISO text (its default adapters); done here
    once per distinct value instead of once per row (two timestamps a row cost ~0.6 s per 100,000)."""

    def text(value: Any) -> Any:
        value = process(value)
        if isinstance(value, dt.datetime):
            return value.isoformat(" ")
        if isinstance(value, dt.date):
            return value.isoformat()
        return value

    return text


def upsert(
    session: Session,
    model: type[SQLModel],
    rows: Iterable[dict[str, Any]] | pd.DataFrame,
    *,
    unique: list[str],
    update: list[str],
    constants: dict[str, Any] | None = None,
    unless_equal: str | None = None,
    new: list[bool] | None = None,
) -> None:
    """One INSERT … ON CONFLICT DO UPDATE of many rows, as a single executemany by the driver.

    `constants` are values every row shares; with `unless_equal`, a row whose column of that name is
    unchanged is left alone. Values are converted column by column with each column type's own bind
    processor (SQLAlchemy's public TypeEngine API) instead of SQLAlchemy's per-row parameter handling,
    which dominated a 100,000-row upsert.

    `new` marks the rows (unique keys) this transaction found absent: they are inserted without the
    upsert's merge (a plain INSERT, or on PostgreSQL a COPY when there are many; on SQLite an upsert
    into a table with foreign keys costs twice an insert). If another writer stored some of them
    meanwhile (possible on PostgreSQL, where our lookup did not see its uncommitted rows), that insert
    is rolled back to its savepoint and every row goes through the merge instead.
    """
    pandas = sys.modules.get("pandas")  # a DataFrame exists only once pandas is loaded
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        if rows.empty:
            return
        names = [str(c) for c in rows.columns]
        columns = [rows[c].tolist() for c in rows.columns]
    else:
        rows = list(rows)
        if not rows:
            return
        names = list(rows[0])
        columns = [[r[c] for r in rows] for c in names]
    count = len(columns[0])
    table = model.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    dialect = conn.dialect

    def processed(name: str, values: list[Any]) -> list[Any]:
        column_type = table.c[name].type
        process = column_type.bind_processor(dialect)
        if dialect.name == "sqlite" and _temporal(column_type):  # bind the text sqlite3 would make
            process = _as_sqlite_text(process or (lambda v: v))
        if process is None:
            return values
        try:  # convert each distinct value once (booleans, dates and codes repeat a lot)
            memo = {v: (None if v is None else process(v)) for v in set(values)}
        except TypeError:  # unhashable values
            return [None if v is None else process(v) for v in values]
        return list(map(memo.__getitem__, values))

    columns = [processed(n, values) for n, values in zip(names, columns, strict=True)]
    for name, value in (constants or {}).items():
        names.append(name)
        columns.append(processed(name, [value]) * count)
    for column in table.columns:  # columns left out take their scalar defaults, as in an ORM insert
        if column.key not in names and column.default is not None and column.default.is_scalar:
            names.append(column.key)
            columns.append(processed(column.key, [column.default.arg]) * count)
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=unique,
        set_={c: stmt.excluded[c] for c in update},
        where=(table.c[unless_equal] != stmt.excluded[unless_equal]) if unless_equal else None,
    )
    compiled = stmt.compile(dialect=dialect, column_keys=names)

    def parameters(columns: list[list[Any]]) -> list[Any]:
        if compiled.positiontup is not None:  # qmark (SQLite): tuples in the statement's order
            return list(zip(*(columns[names.index(n)] for n in compiled.positiontup), strict=True))
        return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]  # pyformat

    if new is not None and any(new):
        fresh = [list(compress(values, new)) for values in columns]
        try:
            with conn.begin_nested():  # a SAVEPOINT: a failed insert leaves the transaction usable
                if dialect.name == "postgresql" and sum(new) >= COPY_MIN_ROWS:
                    _copy_rows(conn, table.name, names, fresh)
                else:
                    plain, _, _ = compiled.string.partition(" ON CONFLICT")  # same columns and parameters
                    conn.exec_driver_sql(plain, parameters(fresh))
        except (sa.exc.IntegrityError, dialect.dbapi.IntegrityError):  # type: ignore[union-attr]
            pass  # another writer stored some of them meanwhile (PostgreSQL): every row through the merge
        else:
            kept = [not n for n in new]
            columns, count = [list(compress(values, kept)) for values in columns], sum(kept)
            if not count:
                return
    if dialect.name == "postgresql" and count >= COPY_MIN_ROWS:
        _upsert_by_copy(conn, table, names, columns, unique, update, unless_equal)
        return
    conn.exec_driver_sql(compiled.string, parameters(columns))
