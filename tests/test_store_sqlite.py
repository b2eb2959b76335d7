"""What is particular to the SQLite store: the file, its schema and migrations, locking."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime

import pytest

from monitor.errors import StorageError
from monitor.items import FeedSpec
from monitor.store import SqliteStorage, open_storage
from monitor.store.sqlite import schema

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_a_new_database_is_migrated_marked_and_in_wal_mode(tmp_path):
    path = tmp_path / "new.db"
    open_storage(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4E4D4F4E
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"feeds", "items", "entities", "matches", "alerts", "story_keys", "items_fts"} <= tables


def test_someone_elses_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="not a news-monitor database"):
        open_storage(path)


def test_a_file_that_is_not_a_database_or_a_directory_is_refused_with_a_storage_error(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite at all" * 100)
    with pytest.raises(StorageError, match="garbage.db"):
        open_storage(garbage)
    with pytest.raises(StorageError, match="is a directory"):
        open_storage(tmp_path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    open_storage(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this news-monitor"):
        open_storage(path)


def test_an_older_database_is_migrated_in_place_keeping_its_data(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])
    old = SqliteStorage.open(path)
    old.db.execute("INSERT INTO feeds (id, name, url) VALUES (1, 'wire', 'http://127.0.0.1/wire.xml')")
    old.db.execute(
        "INSERT INTO items (feed_id, key, guid, title, text, first_seen_at, updated_at, content_hash)"
        " VALUES (1, 'a', 'a', 'Title', 'Text', ?, ?, 'hash')",
        [NOW.isoformat(), NOW.isoformat()],
    )
    old.db.execute(
        "INSERT INTO alerts (rule, channel, item_id, story_id, status, created_at, next_attempt_at)"
        " VALUES ('r', 'mail', 1, 1, 'pending', ?, ?)",
        [NOW.isoformat(), NOW.isoformat()],
    )
    old.close()
    monkeypatch.undo()
    with open_storage(path) as migrated:
        assert migrated.schema_version == len(schema.MIGRATIONS) > 1
        [stored] = list(migrated.iter_items())
        assert stored.item.guid == "a" and not stored.backfill
        assert migrated.unenriched_count() == 0  # items from before were enriched on arrival
        [feed] = migrated.feeds()
        assert (feed.source, feed.tags, feed.interval) == ("config", (), None)
        [alert] = migrated.due_alerts(NOW)
        assert alert.due_since == NOW  # migration 4 filled in when it became due


def test_a_write_waits_for_another_process_lock_instead_of_failing(tmp_path):
    """A read-then-write transaction must wait for the busy timeout, not fail with "database is locked"."""
    path = tmp_path / "state.db"
    with open_storage(path) as store:
        store.add_feed(FeedSpec("extra", "http://127.0.0.1/extra.xml"), NOW)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE feeds SET title = 'held by someone else'")
    released = threading.Event()

    def release_soon() -> None:
        time.sleep(0.5)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release_soon).start()
    with open_storage(path) as store:
        store.remove_feed("extra")  # blocks until the other writer commits
        assert released.is_set()
        assert [feed.name for feed in store.feeds()] == []
    other.close()


def test_the_health_probe_fails_fast_while_another_process_writes(tmp_path):
    path = tmp_path / "state.db"
    open_storage(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with open_storage(path) as store:
        started = time.monotonic()
        with pytest.raises(StorageError, match="locked"):
            store.check_writable()
        assert time.monotonic() - started < 5
    other.execute("ROLLBACK")
    other.close()
