"""The SQLite store's foundation: opening, schema migrations, transactions, time columns.

One file in WAL mode, opened through sqlite-utils. The schema version is
``PRAGMA user_version``; each numbered migration runs in its own transaction
and is never edited once released (migration 4 rebuilds ``alerts`` by hand
because its UNIQUE constraint changes, which ``Table.transform()`` keeps).
``PRAGMA application_id`` marks the file as ours, so we never write into
someone else's database. Times are ISO 8601 UTC strings, which sort as text.

Write transactions begin IMMEDIATE: a transaction that reads and then writes
would otherwise fail at once with "database is locked" when another process
holds the write lock, instead of waiting for the busy timeout.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.errors import StorageError
from monitor.store.rows import Times


def _import_sqlite_utils() -> Any:
    """sqlite-utils, imported without numpy.

    sqlite-utils imports numpy whenever it can, only to map numpy scalars to column types; we
    never store numpy values, and numpy costs a tenth of a second of every command's start-up
    (``poll --once`` with nothing new needs no numpy at all). ``None`` in ``sys.modules`` makes
    that import raise ImportError, which sqlite-utils expects; numpy imports normally afterwards.
    """
    if "numpy" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        del sys.modules["numpy"]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()

APPLICATION_ID = 0x4E4D4F4E  # "NMON"
BUSY_TIMEOUT_MS = 30_000


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime passed to the store; use UTC-aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def db_time(value: str) -> datetime:
    """A NOT NULL time column."""
    return datetime.fromisoformat(value)


TIMES = Times(db_time, from_db_time)  # how the records of monitor.store.rows read this store's times


# --- migrations (never edit a released one; add the next) ------------------------

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1,
        title TEXT,
        etag TEXT,
        last_modified TEXT,
        first_fetch_done INTEGER NOT NULL DEFAULT 0,
        last_polled_at TEXT,
        last_success_at TEXT,
        last_error TEXT,
        last_error_at TEXT,
        error_count INTEGER NOT NULL DEFAULT 0,
        next_poll_at TEXT,
        next_poll_reason TEXT
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        key TEXT NOT NULL,
        guid TEXT,
        link TEXT,
        title TEXT NOT NULL,
        text TEXT NOT NULL,
        author TEXT,
        tags TEXT NOT NULL DEFAULT '[]',
        published_at TEXT,
        first_seen_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        story_id INTEGER,
        UNIQUE (feed_id, key)
    );
    CREATE INDEX items_first_seen ON items(first_seen_at);
    CREATE TABLE entities (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        text TEXT NOT NULL,
        canonical TEXT NOT NULL,
        type TEXT NOT NULL,
        field TEXT NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL
    );
    CREATE INDEX entities_item ON entities(item_id);
    CREATE INDEX entities_canonical ON entities(canonical);
    CREATE TABLE matches (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        rule TEXT NOT NULL,
        explanation TEXT NOT NULL,
        matched_at TEXT NOT NULL,
        UNIQUE (item_id, rule)
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        channel TEXT NOT NULL,
        item_id INTEGER NOT NULL REFERENCES items(id),
        story_id INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT,
        last_error TEXT,
        UNIQUE (rule, channel, story_id)
    );
    CREATE INDEX alerts_due ON alerts(status, next_attempt_at);
    """,
    # 2: items of a first fetch are stored at once and enriched (entities, matches) later
    """
    ALTER TABLE items ADD COLUMN enriched INTEGER NOT NULL DEFAULT 1;
    CREATE INDEX items_unenriched ON items(id) WHERE enriched = 0;
    """,
    # 3: a feed's settings live with it, and feeds can come from the CLI as well as the config
    """
    ALTER TABLE feeds ADD COLUMN source TEXT NOT NULL DEFAULT 'config';
    ALTER TABLE feeds ADD COLUMN interval_seconds REAL;
    ALTER TABLE feeds ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE feeds ADD COLUMN alert_first_fetch INTEGER NOT NULL DEFAULT 0;
    """,
    # 4: stories across feeds, and alerts that can be held (digests, quiet hours) or suppressed
    """
    ALTER TABLE items ADD COLUMN link_key TEXT;
    ALTER TABLE items ADD COLUMN fingerprint BLOB;
    CREATE INDEX items_story ON items(story_id);
    CREATE TABLE story_keys (
        key TEXT NOT NULL,
        item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
        seen_at TEXT NOT NULL
    );
    CREATE INDEX story_keys_lookup ON story_keys(key, seen_at);
    CREATE INDEX story_keys_item ON story_keys(item_id);
    CREATE TABLE alerts_new (
        id INTEGER PRIMARY KEY,
        rule TEXT NOT NULL,
        channel TEXT NOT NULL,
        item_id INTEGER NOT NULL REFERENCES items(id),
        story_id INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        reason TEXT,
        digest INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        due_since TEXT,
        next_attempt_at TEXT NOT NULL,
        sent_at TEXT,
        last_error TEXT,
        UNIQUE (rule, channel, item_id)
    );
    INSERT INTO alerts_new (id, rule, channel, item_id, story_id, status, attempts, created_at, due_since,
                            next_attempt_at, sent_at, last_error)
        SELECT id, rule, channel, item_id, story_id, status, attempts, created_at, created_at,
               next_attempt_at, sent_at, last_error FROM alerts;
    DROP TABLE alerts;
    ALTER TABLE alerts_new RENAME TO alerts;
    CREATE INDEX alerts_due ON alerts(status, next_attempt_at);
    CREATE INDEX alerts_rate ON alerts(rule, channel, created_at);
    CREATE INDEX alerts_story ON alerts(rule, channel, story_id);
    """,
    # 5: feed health: since when a feed fails, and the state last reported
    """
    ALTER TABLE feeds ADD COLUMN failing_since TEXT;
    ALTER TABLE feeds ADD COLUMN health_state TEXT NOT NULL DEFAULT 'ok';
    """,
    # 6: whether an item came in a first fetch (which alerts nobody), so that a replay of history knows;
    # candidates ordered by (seen_at, item_id) straight from the index, so a replay can order them alike
    """
    ALTER TABLE items ADD COLUMN backfill INTEGER NOT NULL DEFAULT 0;
    DROP INDEX story_keys_lookup;
    CREATE INDEX story_keys_lookup ON story_keys(key, seen_at, item_id);
    """,
    # 7: delivery claims a due alert before sending it (a lease), so two processes never send it twice
    """
    ALTER TABLE alerts ADD COLUMN claimed_by TEXT;
    ALTER TABLE alerts ADD COLUMN claimed_until TEXT;
    """,
    # 8: WebSub subscriptions: the hubs that push a feed's news, each with its own callback path and secret
    # (a feed may have two for a moment: the one being unsubscribed and its successor)
    """
    CREATE TABLE websub (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id) ON DELETE CASCADE,
        token TEXT NOT NULL UNIQUE,
        hub TEXT NOT NULL,
        topic TEXT NOT NULL,
        secret TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'requested',
        requested_at TEXT NOT NULL,
        verified_at TEXT,
        lease_until TEXT,
        last_error TEXT,
        last_push_at TEXT
    );
    CREATE INDEX websub_feed ON websub(feed_id);
    """,
    # 9: a digest of the feed document last parsed, so that the same bytes served again are not parsed again
    """
    ALTER TABLE feeds ADD COLUMN body_hash TEXT;
    """,
    # 10: surge alerts: each spike rule's state (so a restart neither forgets a surge nor fires it again), and
    # since when its matches are stored as items arrive (its counts come from them), an index to count them by rule;
    # outbox rows of another kind than a match, with what their message says (the surge's figures and stories)
    """
    CREATE TABLE surges (
        rule TEXT PRIMARY KEY,
        query TEXT NOT NULL,
        surging INTEGER NOT NULL DEFAULT 0,
        checked_at TEXT,
        fired_at TEXT,
        count INTEGER NOT NULL DEFAULT 0,
        usual REAL NOT NULL DEFAULT 0,
        matching_since TEXT
    );
    CREATE INDEX matches_rule ON matches(rule, item_id);
    ALTER TABLE alerts ADD COLUMN kind TEXT NOT NULL DEFAULT 'match';
    ALTER TABLE alerts ADD COLUMN payload TEXT;
    """,
    # 11: instances of the database (registered at start, a heartbeat while they run), and a feed's lease:
    # who polls it now and until when (a poll's outcome ends it; an instance that died leaves it to expire)
    """
    CREATE TABLE instances (
        id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL,
        version TEXT NOT NULL
    );
    ALTER TABLE feeds ADD COLUMN leased_by TEXT;
    ALTER TABLE feeds ADD COLUMN leased_until TEXT;
    """,
]


class SqliteBase:
    """Connection, schema and transactions; the domain mixins build on this."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None):
        self.db = db
        self.path = path
        self._depth = 0

    @classmethod
    def open(cls, path: Path | str) -> Any:
        """Open (creating and migrating when needed) the database at ``path``."""
        path = Path(path)
        if path.is_dir():
            raise StorageError(f"cannot open database {path}: it is a directory")
        existed = path.exists()  # connecting creates the file, so ask first
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are ours (BEGIN IMMEDIATE), not the sqlite3 module's.
            conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        store = cls(sqlite_utils.Database(conn), path)
        try:
            store._prepare(existed=existed)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def memory(cls) -> Any:
        store = cls(sqlite_utils.Database(sqlite3.connect(":memory:", isolation_level=None)), None)
        store._prepare()
        return store

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else ":memory:"

    def _prepare(self, existed: bool = False) -> None:
        conn = self.db.conn
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if existed and version == 0 and tables == 0:
                self._refuse_emptied()
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables > 0 and version == 0):
                raise StorageError(f"{self.where} is not a news-monitor database; refusing to touch it")
            if version > len(MIGRATIONS):
                raise StorageError(
                    f"{self.where} has schema version {version}, newer than this news-monitor knows "
                    f"({len(MIGRATIONS)}); upgrade news-monitor"
                )
            if self.path is not None:
                self.db.enable_wal()
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._migrate(version)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot use database {self.where}: {exc}") from exc

    def _refuse_emptied(self) -> None:
        """A database file that exists but holds no schema was emptied or replaced: starting afresh over it
        would forget every item and alert seen, and alert again. Refuse, unless another process is creating
        it right now (its first migration holds the write lock: wait for that and look again)."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.execute("ROLLBACK")
        if version == 0 and tables == 0:
            raise StorageError(
                f"database {self.where} exists but is empty (no news-monitor schema): it was emptied or replaced, "
                "and starting afresh would forget every item and alert seen; restore it from a backup, "
                "or delete the file to start with a new database"
            )

    def _migrate(self, version: int) -> None:
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in _split_sql(script):
                    self.db.execute(statement)
                if number == 1:
                    self.db["items"].enable_fts(
                        ["title", "text"], create_triggers=True, tokenize="unicode61 remove_diacritics 2"
                    )
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    def check_writable(self) -> None:
        """Raise StorageError unless a write could start now (for the health check).

        Waits at most a second for the lock, not the usual 30: it runs on the event loop.
        """
        conn = self.db.conn
        if conn.in_transaction:
            return
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.where}: {exc}") from exc
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction, begun IMMEDIATE; a nested one joins the outer."""
        conn = self.db.conn
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.where}: {exc}") from exc
        self._depth = 1
        try:
            yield
        except BaseException as exc:
            self._depth = 0
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StorageError(f"database {self.where}: {exc}") from exc
            raise
        else:
            self._depth = 0
            try:
                if conn.in_transaction:  # executescript() (FTS set-up) commits on its own
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"database {self.where}: {exc}") from exc

    def _read(self, sql: str, params: Any = ()) -> list[Any]:
        """Rows of a query; a database failure becomes a StorageError."""
        try:
            return self.db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.where}: {exc}") from exc


def placeholders(values: Any) -> str:
    return ",".join("?" * len(values))


def chunks(values: list[Any], size: int = 400) -> Iterator[list[Any]]:
    """``values`` in slices small enough for one statement (SQLite allows 999 parameters by default)."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
