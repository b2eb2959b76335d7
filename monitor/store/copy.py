"""Moving an installation from a SQLite file to PostgreSQL: every table, row for row, ids kept.

``news-monitor db copy SQLITE_FILE postgresql://...`` reads the SQLite file in one read
transaction (a consistent picture, even with a daemon writing to it) and writes everything into
the PostgreSQL database in one transaction: feeds with their poll state, items with their
entities, matches and story keys, the outbox (sent, held, pending: pending alerts go out from
PostgreSQL), WebSub subscriptions and spike rules' state. Ids are kept, so stories and alerts
refer to what they referred to; the search vector of each item is computed on the way. Then the
rows of each table are counted on both sides, and any difference is an error.

The target must hold no news-monitor data yet (a new, empty database or one freshly migrated):
copying into a database in use would mix two histories.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from monitor.errors import StorageError
from monitor.store.postgres import PostgresStorage
from monitor.store.postgres.fulltext import document_vector
from monitor.store.sqlite import SqliteStorage

# In the order foreign keys need them.
TABLES = ("feeds", "items", "entities", "matches", "story_keys", "alerts", "websub", "surges")
BATCH = 1000


@dataclass(frozen=True)
class Copied:
    table: str
    source: int  # rows in the SQLite file
    target: int  # rows in PostgreSQL after the copy


def copy_database(source: Path, target: str, *, progress: Callable[[str, int], None] | None = None) -> list[Copied]:
    """Copy the SQLite database at ``source`` into the PostgreSQL database at ``target``; the counts, checked."""
    if not source.is_file():
        raise StorageError(f"no SQLite database at {source}")
    with SqliteStorage.open(source) as sqlite, PostgresStorage.open(target) as postgres:
        held = [table for table in ("feeds", "items", "alerts") if postgres.count(table)]
        if held:
            raise StorageError(
                f"database {postgres.where} already holds news-monitor data ({', '.join(held)}); "
                "copy into a new, empty database"
            )
        conn = sqlite.db.conn
        conn.execute("BEGIN")  # one read transaction: the same picture of every table
        try:
            tables = [table for table in TABLES if _sqlite_columns(conn, table)]
            counts = {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]) for table in tables}
            with postgres.transaction():
                for table in tables:
                    _copy_table(conn, postgres, table, progress)
                    _restart_identity(postgres, table)
        finally:
            conn.execute("ROLLBACK")
        copied = [Copied(table, counts[table], _count(postgres, table)) for table in tables]
    wrong = [c for c in copied if c.source != c.target]
    if wrong:
        raise StorageError("the copy is incomplete: " + ", ".join(f"{c.table} {c.target} of {c.source}" for c in wrong))
    return copied


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def _postgres_columns(postgres: PostgresStorage, table: str) -> dict[str, str]:
    rows = postgres._read(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = current_schema() AND table_name = %s",
        [table],
    )
    return {name: kind for name, kind in rows}


def _converter(kind: str) -> Callable[[Any], Any]:
    if kind == "timestamp with time zone":
        return lambda value: datetime.fromisoformat(value) if value else None
    if kind == "boolean":
        return lambda value: None if value is None else bool(value)
    if kind == "bytea":
        return lambda value: None if value is None else bytes(value)
    return lambda value: value


def _copy_table(
    conn: sqlite3.Connection, postgres: PostgresStorage, table: str, progress: Callable[[str, int], None] | None
) -> None:
    wanted = _postgres_columns(postgres, table)
    columns = _sqlite_columns(conn, table)
    if "id" in wanted and "id" not in columns:
        columns = ["rowid AS id", *columns]  # story_keys: its order of insertion is its rowid
    names = [column.split(" AS ")[-1] for column in columns]
    missing = [name for name in names if name not in wanted]
    if missing:
        raise StorageError(f"table {table}: column {', '.join(missing)} has no place in the PostgreSQL schema")
    convert = [_converter(wanted[name]) for name in names]
    target_names = [*names, "search"] if table == "items" else names
    title, text = (names.index("title"), names.index("text")) if table == "items" else (0, 0)
    done = 0
    with postgres.conn.cursor() as cursor:
        quoted = ", ".join(f'"{name}"' for name in target_names)
        with cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
            for row in _rows(conn, f"SELECT {', '.join(columns)} FROM {table} ORDER BY {names[0]}"):
                values = [fn(value) for fn, value in zip(convert, row, strict=True)]
                if table == "items":
                    values.append(document_vector(row[title], row[text]))
                copy.write_row(values)
                done += 1
                if progress is not None and done % BATCH == 0:
                    progress(table, done)


def _rows(conn: sqlite3.Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    cursor = conn.execute(sql)
    while batch := cursor.fetchmany(BATCH):
        yield from batch


def _restart_identity(postgres: PostgresStorage, table: str) -> None:
    """New rows continue after the ids copied."""
    if "id" not in _postgres_columns(postgres, table):
        return
    postgres._execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT max(id) FROM {table}), 0) + 1, false)"
    )


def _count(postgres: PostgresStorage, table: str) -> int:
    return int(postgres._read(f"SELECT count(*) FROM {table}")[0][0])
