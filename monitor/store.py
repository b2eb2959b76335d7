"""All SQL lives here: schema, migrations and every read and write.

One SQLite file in WAL mode, opened through sqlite-utils. The schema version
is ``PRAGMA user_version`` and each migration runs in its own transaction;
``PRAGMA application_id`` marks the file as ours so we never write into
someone else's database. Times are stored as ISO 8601 UTC strings, which sort
correctly as text.

A poll writes everything it learned in one transaction (:meth:`Store.record_poll`):
items, entities, matches and the alert outbox rows. An alert therefore exists
before anyone is notified, and delivery reads only the outbox.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from monitor.errors import StorageError
from monitor.items import FeedSpec, Item, Mention

APPLICATION_ID = 0x4E4D4F4E  # "NMON"
CANDIDATES_PER_KEY = 20  # earlier items per story look-up key a new item is compared with


def to_db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime passed to the store; use UTC-aware datetimes")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def from_db_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- migrations ----------------------------------------------------------------

_MIGRATIONS: list[str] = [
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
]


# --- records -------------------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    first_fetch_done: bool
    error_count: int
    next_poll_at: datetime | None
    source: str = "config"  # "config": governed by monitor.yaml; "cli": added with `feeds add`/`import`
    interval: timedelta | None = None
    tags: tuple[str, ...] = ()
    alert_first_fetch: bool = False
    title: str | None = None  # as the feed itself calls itself


@dataclass(frozen=True)
class MatchRecord:
    rule: str
    hits: list[dict[str, Any]]
    channels: tuple[str, ...]  # empty: store the match, alert nobody (backfill)


@dataclass(frozen=True)
class StoryInfo:
    """What finds an item's story: its canonical link, text fingerprint and lookup keys."""

    link_key: str | None
    fingerprint: bytes
    keys: tuple[str, ...]


@dataclass(frozen=True)
class StoryCandidate:
    """An earlier item sharing a lookup key with a new one."""

    story_id: int
    item_id: int
    link_key: str | None
    fingerprint: bytes | None
    seen_at: datetime


@dataclass(frozen=True)
class AlertStats:
    """What the outbox knows about earlier alerts of a rule on a channel (for pacing)."""

    instant_last_hour: int
    oldest_instant_last_hour: datetime | None
    last_alert_for_story: datetime | None


@dataclass(frozen=True)
class AlertPlan:
    """How a new outbox row starts: pending (send now), held (until release_at) or suppressed."""

    status: str = "pending"
    reason: str | None = None
    release_at: datetime | None = None


# Given a new item's story info and the candidates found for it: the story it joins, or None.
StoryChooser = Callable[[StoryInfo, list[StoryCandidate]], int | None]
# Given rule, channel and the outbox's stats: how the new alert starts.
AlertPlanner = Callable[[str, str, AlertStats], AlertPlan]


@dataclass(frozen=True)
class ItemRecord:
    item: Item
    mentions: Sequence[Mention]
    matches: Sequence[MatchRecord] = ()
    enriched: bool = True  # False: entities and matches come later (enrich_backlog)
    story: StoryInfo | None = None


@dataclass(frozen=True)
class Enrichment:
    """Entities and matches found for a stored item after the fact (no alerts)."""

    item_id: int
    mentions: Sequence[Mention]
    matches: Sequence[MatchRecord] = ()
    story: StoryInfo | None = None


@dataclass(frozen=True)
class PollResult:
    """What a successful poll learned about a feed, written in one transaction."""

    feed_id: int
    polled_at: datetime
    next_poll_at: datetime
    next_poll_reason: str
    etag: str | None
    last_modified: str | None
    title: str | None
    records: Sequence[ItemRecord] = ()
    story_window: timedelta = timedelta(days=3)  # how far back a new item looks for its story


@dataclass(frozen=True)
class PendingAlert:
    """An outbox row joined with what rendering needs."""

    id: int
    rule: str
    channel: str
    attempts: int
    created_at: datetime
    feed: str
    title: str
    link: str | None
    text: str
    published_at: datetime | None
    hits: list[dict[str, Any]] = field(default_factory=list)
    status: str = "pending"  # or "held": released now as part of a digest
    story_id: int = 0
    due_since: datetime | None = None  # when it first became due; the retry window counts from here
    outlets: tuple[str, ...] = ()  # the other feeds that ran the story


@dataclass(frozen=True)
class StoredItem:
    id: int
    feed: str
    item: Item
    first_seen_at: datetime
    mentions: tuple[Mention, ...]


# Marks around the words a search matched; control characters never occur in feed text.
HIGHLIGHT_START = "\x02"
HIGHLIGHT_END = "\x03"


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    feed: str
    title: str
    link: str | None
    published_at: datetime | None
    first_seen_at: datetime
    snippet: str  # matched words between HIGHLIGHT_START and HIGHLIGHT_END
    title_marked: str


# --- the store -----------------------------------------------------------------


class Store:
    """The database of one news-monitor instance. Use from one thread."""

    def __init__(self, db: sqlite_utils.Database, path: Path | None):
        self.db = db
        self.path = path

    @classmethod
    def open(cls, path: Path | str) -> Store:
        """Open (creating and migrating when needed) the database at ``path``."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=30)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from exc
        store = cls(sqlite_utils.Database(conn), path)
        store._prepare()
        return store

    @classmethod
    def memory(cls) -> Store:
        store = cls(sqlite_utils.Database(memory=True), None)
        store._prepare()
        return store

    def close(self) -> None:
        self.db.close()

    def _prepare(self) -> None:
        conn = self.db.conn
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables > 0 and version == 0):
                raise StorageError(f"{self.path} is not a news-monitor database; refusing to touch it")
            if version > len(_MIGRATIONS):
                raise StorageError(
                    f"{self.path} has schema version {version}, newer than this news-monitor knows "
                    f"({len(_MIGRATIONS)}); upgrade news-monitor"
                )
            if self.path is not None:
                self.db.enable_wal()
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            self._migrate(version)
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot use database {self.path}: {exc}") from exc

    def _migrate(self, version: int) -> None:
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            with self.db.atomic():
                for statement in _split_sql(script):
                    self.db.execute(statement)
                if number == 1:
                    self.db["items"].enable_fts(["title", "text"], create_triggers=True, tokenize="unicode61 remove_diacritics 2")
                self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                self.db.execute(f"PRAGMA user_version = {number}")

    def check_writable(self) -> None:
        """Raise StorageError unless a write could start now (for the health check).

        Waits at most a second for the lock, not the usual 30: it runs on the
        event loop.
        """
        conn = self.db.conn
        if conn.in_transaction:
            return
        try:
            conn.execute("PRAGMA busy_timeout = 1000")
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    # --- feeds -------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds of the config the config's feeds.

        New feeds are due now; a feed whose URL changed forgets its validators;
        config feeds gone from the config become inactive (their items stay).
        Feeds added from the CLI are left alone, unless the config now names
        one of them: then the config governs it.
        """
        with self._transaction():
            for spec in feeds:
                row = self.db.execute("SELECT id, url FROM feeds WHERE name = ?", [spec.name]).fetchone()
                if row is None:
                    self._insert_feed(spec, "config", now)
                    continue
                if row[1] != spec.url:
                    self.db.execute(
                        "UPDATE feeds SET url = ?, etag = NULL, last_modified = NULL,"
                        " next_poll_at = ?, next_poll_reason = 'url changed' WHERE id = ?",
                        [spec.url, to_db_time(now), row[0]],
                    )
                self.db.execute(
                    "UPDATE feeds SET active = 1, source = 'config', interval_seconds = ?, tags = ?,"
                    " alert_first_fetch = ? WHERE id = ?",
                    [*_spec_columns(spec), row[0]],
                )
            names = [spec.name for spec in feeds]
            placeholders = ",".join("?" * len(names))
            self.db.execute(
                f"UPDATE feeds SET active = 0 WHERE source = 'config' AND name NOT IN ({placeholders})", names
            )

    def feed_histories(self, now: datetime, window: timedelta) -> list[dict[str, Any]]:
        """Per active feed: failing since, last error, newest item, items within ``window``, reported state."""
        rows = self.db.execute(
            """
            SELECT feeds.name, feeds.failing_since, feeds.last_error, feeds.health_state,
                   (SELECT max(first_seen_at) FROM items WHERE items.feed_id = feeds.id),
                   (SELECT count(*) FROM items WHERE items.feed_id = feeds.id
                        AND COALESCE(items.published_at, items.first_seen_at) > ?)
            FROM feeds WHERE active = 1 ORDER BY name
            """,
            [to_db_time(now - window)],
        ).fetchall()
        return [
            {
                "name": row[0],
                "failing_since": from_db_time(row[1]),
                "last_error": row[2],
                "state": row[3],
                "last_item_at": from_db_time(row[4]),
                "items_in_window": row[5],
            }
            for row in rows
        ]

    def set_feed_health(self, name: str, state: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE feeds SET health_state = ? WHERE name = ?", [state, name])

    def feed_tags(self) -> dict[str, tuple[str, ...]]:
        """The tags of every feed by name (for rules that test ``tag:``)."""
        return {name: tuple(json.loads(tags)) for name, tags in self.db.execute("SELECT name, tags FROM feeds")}

    def add_feed(self, spec: FeedSpec, now: datetime) -> None:
        """Add a feed from the CLI; due at once. Raises StorageError if the name or URL is taken."""
        with self._transaction():
            taken = self.db.execute(
                "SELECT name, active FROM feeds WHERE name = ? OR url = ?", [spec.name, spec.url]
            ).fetchone()
            if taken is not None and taken[0] == spec.name and not taken[1]:
                # A removed feed of that name comes back, its history intact.
                self.db.execute(
                    "UPDATE feeds SET active = 1, source = 'cli', url = ?, etag = NULL, last_modified = NULL,"
                    " interval_seconds = ?, tags = ?, alert_first_fetch = ?,"
                    " next_poll_at = ?, next_poll_reason = 'added' WHERE name = ?",
                    [spec.url, *_spec_columns(spec), to_db_time(now), spec.name],
                )
                return
            if taken is not None:
                raise StorageError(f"a feed named {taken[0]!r} already has that name or URL")
            self._insert_feed(spec, "cli", now)

    def remove_feed(self, name: str) -> str | None:
        """Stop polling a CLI feed (its items stay). Returns why not, or None when done."""
        with self._transaction():
            row = self.db.execute("SELECT source, active FROM feeds WHERE name = ?", [name]).fetchone()
            if row is None or not row[1]:
                return f"no feed named {name!r}"
            if row[0] == "config":
                return f"feed {name!r} is declared in monitor.yaml: remove it there"
            self.db.execute("UPDATE feeds SET active = 0 WHERE name = ?", [name])
        return None

    def _insert_feed(self, spec: FeedSpec, source: str, now: datetime) -> None:
        self.db.execute(
            "INSERT INTO feeds (name, url, source, interval_seconds, tags, alert_first_fetch, next_poll_at,"
            " next_poll_reason) VALUES (?, ?, ?, ?, ?, ?, ?, 'new feed')",
            [spec.name, spec.url, source, *_spec_columns(spec), to_db_time(now)],
        )

    def feeds(self, *, active_only: bool = True) -> list[FeedState]:
        where = "WHERE active = 1" if active_only else ""
        rows = self.db.execute(
            f"SELECT {_FEED_COLUMNS} FROM feeds {where} ORDER BY name"
        ).fetchall()
        return [_feed_state(row) for row in rows]

    def feeds_due(self, now: datetime) -> list[FeedState]:
        rows = self.db.execute(
            f"SELECT {_FEED_COLUMNS}"
            " FROM feeds WHERE active = 1 AND (next_poll_at IS NULL OR next_poll_at <= ?)"
            " ORDER BY next_poll_at",
            [to_db_time(now)],
        ).fetchall()
        return [_feed_state(row) for row in rows]

    def entries_last_week(self, feed_id: int, now: datetime) -> int:
        """The feed's items published (else first seen) in the week before ``now``.

        By publish time where there is one: a first fetch stores a feed's old
        items all at once, which says nothing about how often it publishes.
        """
        row = self.db.execute(
            "SELECT count(*) FROM items WHERE feed_id = ? AND COALESCE(published_at, first_seen_at) > ?"
            " AND COALESCE(published_at, first_seen_at) <= ?",
            [feed_id, to_db_time(now - timedelta(days=7)), to_db_time(now)],
        ).fetchone()
        return int(row[0])

    def known_items(self, feed_id: int, keys: Sequence[str]) -> dict[str, str]:
        """Content hashes of the stored items of a feed among ``keys``."""
        found: dict[str, str] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            placeholders = ",".join("?" * len(chunk))
            for key, content_hash in self.db.execute(
                f"SELECT key, content_hash FROM items WHERE feed_id = ? AND key IN ({placeholders})",
                [feed_id, *chunk],
            ):
                found[key] = content_hash
        return found

    def record_poll(
        self,
        result: PollResult,
        *,
        choose_story: StoryChooser | None = None,
        plan_alert: AlertPlanner | None = None,
    ) -> dict[str, int]:
        """Write one successful poll: feed state, items, entities, matches, alerts.

        The deciding is left to the caller: ``choose_story`` says which earlier
        story a new item joins, ``plan_alert`` how each new alert starts. Both
        are asked inside the transaction, item by item, so copies of a story
        in one batch see each other and a burst counts against its own limit.
        """
        counts = {"items": 0, "matches": 0, "alerts": 0, "suppressed": 0}
        now = to_db_time(result.polled_at)
        with self._transaction():
            self.db.execute(
                "UPDATE feeds SET etag = ?, last_modified = ?, title = COALESCE(?, title), first_fetch_done = 1,"
                " last_polled_at = ?, last_success_at = ?, error_count = 0, last_error = NULL, failing_since = NULL,"
                " next_poll_at = ?, next_poll_reason = ? WHERE id = ?",
                [
                    result.etag,
                    result.last_modified,
                    result.title,
                    now,
                    now,
                    to_db_time(result.next_poll_at),
                    result.next_poll_reason,
                    result.feed_id,
                ],
            )
            for record in result.records:
                item_id, new = self._upsert_item(result.feed_id, record, now)
                if new and record.story is not None and choose_story is not None:
                    self._join_story(item_id, record.story, result.polled_at - result.story_window, choose_story)
                counts["items"] += 1
                self._replace_entities(item_id, record.mentions)
                for match in record.matches:
                    counts["matches"] += self._insert_match(item_id, match, now)
                    for channel in match.channels:
                        status = self._insert_alert(item_id, match.rule, channel, result.polled_at, plan_alert)
                        if status == "suppressed":
                            counts["suppressed"] += 1
                        elif status is not None:
                            counts["alerts"] += 1
        return counts

    def _join_story(self, item_id: int, story: StoryInfo, since: datetime, choose: StoryChooser) -> None:
        candidates = self._story_candidates(item_id, story.keys, since)
        story_id = choose(story, candidates) if candidates else None
        if story_id is not None:
            self.db.execute("UPDATE items SET story_id = ? WHERE id = ?", [story_id, item_id])
        seen_at = self.db.execute("SELECT first_seen_at FROM items WHERE id = ?", [item_id]).fetchone()[0]
        self.db.conn.executemany(
            "INSERT INTO story_keys (key, item_id, seen_at) VALUES (?, ?, ?)",
            [(key, item_id, seen_at) for key in story.keys],
        )

    def _story_candidates(self, item_id: int, keys: Sequence[str], since: datetime) -> list[StoryCandidate]:
        if not keys:
            return []
        # Bounded per key: real news gives a handful of candidates, but a key
        # shared by many near-identical boilerplate items must not make every
        # new item read them all. The newest items of each key are enough.
        per_key = " UNION ".join(
            f"SELECT item_id FROM (SELECT item_id FROM story_keys WHERE key = ? AND seen_at >= ?"
            f" ORDER BY seen_at DESC LIMIT {CANDIDATES_PER_KEY})"
            for _ in keys
        )
        params: list[Any] = []
        for key in keys:
            params += [key, to_db_time(since)]
        rows = self.db.execute(
            f"""
            SELECT items.id, COALESCE(items.story_id, items.id), items.link_key, items.fingerprint,
                   items.first_seen_at
            FROM items WHERE items.id IN ({per_key}) AND items.id != ?
            ORDER BY items.id
            """,
            [*params, item_id],
        ).fetchall()
        return [
            StoryCandidate(story_id=row[1], item_id=row[0], link_key=row[2], fingerprint=row[3], seen_at=from_db_time(row[4]))  # type: ignore[arg-type]
            for row in rows
        ]

    def unenriched_items(self, limit: int = 64) -> list[StoredItem]:
        """Items stored without entities and matches yet, oldest first."""
        return self._stored_items("items.enriched = 0 ORDER BY items.id LIMIT ?", [limit])

    def unenriched_count(self) -> int:
        return self.db.execute("SELECT count(*) FROM items WHERE enriched = 0").fetchone()[0]

    def record_enrichment(
        self,
        enrichments: Sequence[Enrichment],
        now: datetime,
        *,
        choose_story: StoryChooser | None = None,
        story_window: timedelta = timedelta(days=3),
    ) -> int:
        """Store entities, matches and stories found after the fact; returns the matches written."""
        written = 0
        stamp = to_db_time(now)
        with self._transaction():
            for enrichment in enrichments:
                if enrichment.story is not None and choose_story is not None:
                    self.db.execute(
                        "UPDATE items SET link_key = ?, fingerprint = ? WHERE id = ?",
                        [enrichment.story.link_key, enrichment.story.fingerprint, enrichment.item_id],
                    )
                    self._join_story(enrichment.item_id, enrichment.story, now - story_window, choose_story)
                self._replace_entities(enrichment.item_id, enrichment.mentions)
                for match in enrichment.matches:
                    written += self._insert_match(enrichment.item_id, match, stamp)
                self.db.execute("UPDATE items SET enriched = 1 WHERE id = ?", [enrichment.item_id])
        return written

    def record_not_modified(self, feed_id: int, polled_at: datetime, next_poll_at: datetime, reason: str) -> None:
        now = to_db_time(polled_at)
        with self._transaction():
            self.db.execute(
                "UPDATE feeds SET last_polled_at = ?, last_success_at = ?, error_count = 0, last_error = NULL,"
                " failing_since = NULL, next_poll_at = ?, next_poll_reason = ? WHERE id = ?",
                [now, now, to_db_time(next_poll_at), reason, feed_id],
            )

    def record_failure(
        self, feed_id: int, error: str, polled_at: datetime, next_poll_at: datetime, reason: str
    ) -> None:
        now = to_db_time(polled_at)
        with self._transaction():
            self.db.execute(
                "UPDATE feeds SET last_polled_at = ?, last_error = ?, last_error_at = ?,"
                " failing_since = COALESCE(failing_since, ?),"
                " error_count = error_count + 1, next_poll_at = ?, next_poll_reason = ? WHERE id = ?",
                [now, error, now, now, to_db_time(next_poll_at), reason, feed_id],
            )

    def _upsert_item(self, feed_id: int, record: ItemRecord, now: str | None) -> tuple[int, bool]:
        """The item's id, and whether it is new (a changed item keeps its story)."""
        item = record.item
        values = {
            "enriched": int(record.enriched),
            "link_key": record.story.link_key if record.story else None,
            "fingerprint": record.story.fingerprint if record.story else None,
            "guid": item.guid,
            "link": item.link,
            "title": item.title,
            "text": item.text,
            "author": item.author,
            "tags": json.dumps(list(item.tags), ensure_ascii=False),
            "published_at": to_db_time(item.published_at),
            "content_hash": item.content_hash,
        }
        row = self.db.execute("SELECT id FROM items WHERE feed_id = ? AND key = ?", [feed_id, item.key]).fetchone()
        if row is not None:
            assignments = ", ".join(f"{column} = :{column}" for column in values)
            self.db.execute(f"UPDATE items SET {assignments}, updated_at = :now WHERE id = :id", {**values, "now": now, "id": row[0]})
            return int(row[0]), False
        columns = ", ".join(values)
        cursor = self.db.execute(
            f"INSERT INTO items (feed_id, key, {columns}, first_seen_at, updated_at)"
            f" VALUES (:feed_id, :key, {', '.join(':' + c for c in values)}, :now, :now)",
            {**values, "feed_id": feed_id, "key": item.key, "now": now},
        )
        return int(cursor.lastrowid), True

    def _replace_entities(self, item_id: int, mentions: Sequence[Mention]) -> None:
        self.db.execute("DELETE FROM entities WHERE item_id = ?", [item_id])
        self.db.conn.executemany(
            'INSERT INTO entities (item_id, text, canonical, type, field, start, "end") VALUES (?, ?, ?, ?, ?, ?, ?)',
            [(item_id, m.text, m.canonical, m.type, m.field, m.start, m.end) for m in mentions],
        )

    def _insert_match(self, item_id: int, match: MatchRecord, now: str | None) -> int:
        cursor = self.db.execute(
            "INSERT INTO matches (item_id, rule, explanation, matched_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (item_id, rule) DO UPDATE SET explanation = excluded.explanation",
            [item_id, match.rule, json.dumps(match.hits, ensure_ascii=False), now],
        )
        return cursor.rowcount

    def _insert_alert(
        self, item_id: int, rule: str, channel: str, now: datetime, plan_alert: AlertPlanner | None
    ) -> str | None:
        """Add an outbox row as the planner says; its status, or None if it existed."""
        story_id = self.db.execute("SELECT COALESCE(story_id, id) FROM items WHERE id = ?", [item_id]).fetchone()[0]
        exists = self.db.execute(
            "SELECT 1 FROM alerts WHERE rule = ? AND channel = ? AND item_id = ?", [rule, channel, item_id]
        ).fetchone()
        if exists:
            return None
        plan = plan_alert(rule, channel, self._alert_stats(rule, channel, story_id, now)) if plan_alert else AlertPlan()
        stamp = to_db_time(now)
        release = to_db_time(plan.release_at) if plan.release_at else stamp
        self.db.execute(
            "INSERT INTO alerts (rule, channel, item_id, story_id, status, reason, digest, created_at, due_since,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                rule, channel, item_id, story_id, plan.status, plan.reason, int(plan.status == "held"),
                stamp, None if plan.status == "suppressed" else release, release,
            ],
        )  # fmt: skip
        return plan.status

    def _alert_stats(self, rule: str, channel: str, story_id: int, now: datetime) -> AlertStats:
        count, oldest = self.db.execute(
            "SELECT count(*), min(created_at) FROM alerts WHERE rule = ? AND channel = ? AND digest = 0"
            " AND status IN ('pending', 'sent', 'dead') AND created_at > ?",
            [rule, channel, to_db_time(now - timedelta(hours=1))],
        ).fetchone()
        (last,) = self.db.execute(
            "SELECT max(COALESCE(sent_at, created_at)) FROM alerts WHERE rule = ? AND channel = ? AND story_id = ?"
            " AND status IN ('pending', 'held', 'sent')",
            [rule, channel, story_id],
        ).fetchone()
        return AlertStats(count, from_db_time(oldest), from_db_time(last))

    # --- alert outbox -------------------------------------------------------

    def due_alerts(self, now: datetime, limit: int = 100) -> list[PendingAlert]:
        """Pending and held alerts whose time has come, oldest first."""
        rows = self.db.execute(
            """
            SELECT alerts.id, alerts.rule, alerts.channel, alerts.attempts, alerts.created_at,
                   feeds.name, items.title, items.link, items.text, items.published_at,
                   matches.explanation, alerts.status, alerts.story_id, alerts.due_since
            FROM alerts
            JOIN items ON items.id = alerts.item_id
            JOIN feeds ON feeds.id = items.feed_id
            LEFT JOIN matches ON matches.item_id = alerts.item_id AND matches.rule = alerts.rule
            WHERE alerts.status IN ('pending', 'held') AND alerts.next_attempt_at <= ?
            ORDER BY alerts.next_attempt_at, alerts.id
            LIMIT ?
            """,
            [to_db_time(now), limit],
        ).fetchall()
        outlets = self.story_outlets([row[12] for row in rows])
        return [
            PendingAlert(
                id=row[0],
                rule=row[1],
                channel=row[2],
                attempts=row[3],
                created_at=from_db_time(row[4]),  # type: ignore[arg-type]
                feed=row[5],
                title=row[6],
                link=row[7],
                text=row[8],
                published_at=from_db_time(row[9]),
                hits=json.loads(row[10]) if row[10] else [],
                status=row[11],
                story_id=row[12],
                due_since=from_db_time(row[13]),
                outlets=tuple(feed for feed in outlets.get(row[12], ()) if feed != row[5]),
            )
            for row in rows
        ]

    def story_outlets(self, story_ids: Sequence[int]) -> dict[int, list[str]]:
        """The feeds that ran each story, in the order they ran it."""
        found: dict[int, list[str]] = {}
        unique = sorted(set(story_ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            placeholders = ",".join("?" * len(chunk))
            for story_id, feed in self.db.execute(
                f"SELECT COALESCE(items.story_id, items.id) AS story, feeds.name FROM items"
                f" JOIN feeds ON feeds.id = items.feed_id"
                f" WHERE items.id IN ({placeholders}) OR items.story_id IN ({placeholders})"
                f" ORDER BY items.first_seen_at, items.id",
                [*chunk, *chunk],
            ):
                if feed not in found.setdefault(story_id, []):
                    found[story_id].append(feed)
        return found

    def mark_held(self, alert_id: int, reason: str | None, release_at: datetime) -> None:
        """Hold an alert for a digest until ``release_at``."""
        with self._transaction():
            self.db.execute(
                "UPDATE alerts SET status = 'held', digest = 1, reason = ?, next_attempt_at = ?, due_since = ?"
                " WHERE id = ?",
                [reason, to_db_time(release_at), to_db_time(release_at), alert_id],
            )

    def mark_sent(self, alert_id: int, now: datetime) -> None:
        with self._transaction():
            self.db.execute(
                "UPDATE alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1"
                " WHERE id = ?",
                [to_db_time(now), alert_id],
            )

    def mark_failed(self, alert_id: int, reason: str, next_attempt_at: datetime | None) -> None:
        """Record a failed send; ``next_attempt_at=None`` gives up (status dead)."""
        with self._transaction():
            if next_attempt_at is None:
                self.db.execute(
                    "UPDATE alerts SET status = 'dead', attempts = attempts + 1, last_error = ? WHERE id = ?",
                    [reason, alert_id],
                )
            else:
                self.db.execute(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                    [reason, to_db_time(next_attempt_at), alert_id],
                )

    # --- reading ------------------------------------------------------------

    def feed_status(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            """
            SELECT feeds.name, feeds.url, feeds.active, feeds.last_success_at, feeds.last_error,
                   feeds.last_error_at, feeds.error_count, feeds.next_poll_at, feeds.next_poll_reason,
                   (SELECT count(*) FROM items WHERE items.feed_id = feeds.id)
            FROM feeds ORDER BY feeds.name
            """
        ).fetchall()
        keys = [
            "name", "url", "active", "last_success_at", "last_error", "last_error_at",
            "error_count", "next_poll_at", "next_poll_reason", "items",
        ]  # fmt: skip
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def alert_counts(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT status, count(*) FROM alerts GROUP BY status ORDER BY status").fetchall())

    def list_alerts(
        self, *, status: str | None = None, rule: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """The newest outbox rows, with the title and feed of their item."""
        cursor = self.db.execute(
            """
            SELECT alerts.id, alerts.status, alerts.reason, alerts.rule, alerts.channel, alerts.attempts,
                   alerts.created_at, alerts.next_attempt_at, alerts.sent_at, alerts.last_error,
                   feeds.name AS feed, items.title, items.link, alerts.story_id
            FROM alerts JOIN items ON items.id = alerts.item_id JOIN feeds ON feeds.id = items.feed_id
            WHERE (? IS NULL OR alerts.status = ?) AND (? IS NULL OR alerts.rule = ?)
            ORDER BY alerts.id DESC LIMIT ?
            """,
            [status, status, rule, rule, limit],
        )
        columns = [d[0] for d in cursor.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
        outlets = self.story_outlets([row["story_id"] for row in rows])
        for row in rows:
            row["outlets"] = outlets.get(row["story_id"], [])
        return rows

    def retry_alerts(self, now: datetime, *, ids: Sequence[int] = (), dead: bool = False) -> int:
        """Make alerts due again now (by id, or every dead one); returns how many."""
        with self._transaction():
            changed = 0
            if ids:
                placeholders = ",".join("?" * len(ids))
                changed += self.db.execute(
                    f"UPDATE alerts SET status = 'pending', next_attempt_at = ? WHERE id IN ({placeholders})"
                    " AND status != 'pending'",
                    [to_db_time(now), *ids],
                ).rowcount
            if dead:
                changed += self.db.execute(
                    "UPDATE alerts SET status = 'pending', next_attempt_at = ? WHERE status = 'dead'",
                    [to_db_time(now)],
                ).rowcount
        return changed

    def alerts(self) -> list[dict[str, Any]]:
        cursor = self.db.execute(
            "SELECT id, rule, channel, item_id, story_id, status, attempts, created_at, next_attempt_at,"
            " sent_at, last_error FROM alerts ORDER BY id"
        )
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def iter_items(self, since: datetime | None = None, batch: int = 500) -> Iterator[StoredItem]:
        """Stored items, oldest first, with their entities."""
        last_id = 0
        while True:
            found = self._stored_items(
                "items.id > ? AND (? IS NULL OR items.first_seen_at >= ?) ORDER BY items.id LIMIT ?",
                [last_id, to_db_time(since), to_db_time(since), batch],
            )
            if not found:
                return
            yield from found
            last_id = found[-1].id

    def first_seen(self, since: datetime | None = None) -> datetime | None:
        """When the oldest item (first seen at or after ``since``) was stored."""
        row = self.db.execute(
            "SELECT min(first_seen_at) FROM items WHERE ? IS NULL OR first_seen_at >= ?",
            [to_db_time(since), to_db_time(since)],
        ).fetchone()
        return from_db_time(row[0])

    def find_items(self, ref: str) -> list[StoredItem]:
        """Items by id, guid or link (a guid or link may name items of several feeds)."""
        if ref.isdigit():
            return self._stored_items("items.id = ?", [int(ref)])
        return self._stored_items("items.guid = ? OR items.link = ? ORDER BY items.id", [ref, ref])

    def _stored_items(self, where: str, params: Sequence[Any]) -> list[StoredItem]:
        rows = self.db.execute(
            "SELECT items.id, feeds.name, items.guid, items.link, items.title, items.text, items.author,"
            " items.tags, items.published_at, items.first_seen_at"
            f" FROM items JOIN feeds ON feeds.id = items.feed_id WHERE {where}",
            params,
        ).fetchall()
        mentions = self._mentions_of([row[0] for row in rows]) if rows else {}
        return [
            StoredItem(
                id=row[0],
                feed=row[1],
                item=Item(
                    guid=row[2],
                    link=row[3],
                    title=row[4],
                    text=row[5],
                    author=row[6],
                    tags=tuple(json.loads(row[7])),
                    published_at=from_db_time(row[8]),
                ),
                first_seen_at=from_db_time(row[9]),  # type: ignore[arg-type]
                mentions=tuple(mentions.get(row[0], ())),
            )
            for row in rows
        ]

    def search(self, query: str, *, since: datetime | None = None, limit: int = 20) -> list[SearchHit]:
        """Items matching a full-text query, best first, with a highlighted snippet.

        ``query`` is FTS5 syntax (words, "phrases", prefix*, AND/OR/NOT); text
        that is not valid FTS5 is searched as plain words instead. Titles
        weigh five times the body in the ranking.
        """
        try:
            return self._search(query, since, limit)
        except sqlite3.OperationalError:
            words = [word for word in query.replace('"', " ").split() if word]
            if not words:
                return []
            return self._search(" ".join(f'"{word}"' for word in words), since, limit)

    def _search(self, match: str, since: datetime | None, limit: int) -> list[SearchHit]:
        rows = self.db.execute(
            f"""
            SELECT items.id, feeds.name, items.title, items.link, items.published_at, items.first_seen_at,
                   snippet(items_fts, 1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24) AS snippet,
                   highlight(items_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}') AS title_marked
            FROM items_fts
            JOIN items ON items.id = items_fts.rowid
            JOIN feeds ON feeds.id = items.feed_id
            WHERE items_fts MATCH ? AND (? IS NULL OR items.first_seen_at >= ?)
            ORDER BY bm25(items_fts, 5.0, 1.0)
            LIMIT ?
            """,
            [match, to_db_time(since), to_db_time(since), limit],
        ).fetchall()
        return [
            SearchHit(
                item_id=row[0],
                feed=row[1],
                title=row[2],
                link=row[3],
                published_at=from_db_time(row[4]),
                first_seen_at=from_db_time(row[5]),  # type: ignore[arg-type]
                snippet=row[6],
                title_marked=row[7],
            )
            for row in rows
        ]

    def apply_retention(
        self, now: datetime, *, items: timedelta | None, matches: timedelta | None, alerts: timedelta | None
    ) -> dict[str, int]:
        """Delete what is older than its retention; ``None`` keeps forever.

        Pending alerts are never deleted, and an item stays while a match or
        an alert still refers to it, so matches and alerts can outlive the
        plain items. The full-text index follows through its triggers.
        """
        deleted = {"alerts": 0, "matches": 0, "items": 0}
        with self._transaction():
            if alerts is not None:
                deleted["alerts"] = self.db.execute(
                    "DELETE FROM alerts WHERE status != 'pending' AND created_at < ?", [to_db_time(now - alerts)]
                ).rowcount
            if matches is not None:
                deleted["matches"] = self.db.execute(
                    "DELETE FROM matches WHERE matched_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = matches.item_id)",
                    [to_db_time(now - matches)],
                ).rowcount
            if items is not None:
                deleted["items"] = self.db.execute(
                    "DELETE FROM items WHERE first_seen_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM matches WHERE matches.item_id = items.id)"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = items.id)",
                    [to_db_time(now - items)],
                ).rowcount
        if deleted["items"]:
            self.db.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
        return deleted

    def _mentions_of(self, item_ids: list[int]) -> dict[int, list[Mention]]:
        placeholders = ",".join("?" * len(item_ids))
        found: dict[int, list[Mention]] = {}
        for row in self.db.execute(
            f'SELECT item_id, text, canonical, type, field, start, "end" FROM entities'
            f" WHERE item_id IN ({placeholders}) ORDER BY id",
            item_ids,
        ):
            found.setdefault(row[0], []).append(Mention(*row[1:]))
        return found

    def count(self, table: str) -> int:
        if table not in {"feeds", "items", "entities", "matches", "alerts"}:
            raise ValueError(table)
        return self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self.db.atomic():
                yield
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc


_FEED_COLUMNS = (
    "id, name, url, etag, last_modified, first_fetch_done, error_count, next_poll_at,"
    " source, interval_seconds, tags, alert_first_fetch, title"
)


def _feed_state(row: Sequence[Any]) -> FeedState:
    return FeedState(
        id=row[0],
        name=row[1],
        url=row[2],
        etag=row[3],
        last_modified=row[4],
        first_fetch_done=bool(row[5]),
        error_count=row[6],
        next_poll_at=from_db_time(row[7]),
        source=row[8],
        interval=timedelta(seconds=row[9]) if row[9] else None,
        tags=tuple(json.loads(row[10])),
        alert_first_fetch=bool(row[11]),
        title=row[12],
    )


def _spec_columns(spec: FeedSpec) -> list[Any]:
    """interval_seconds, tags, alert_first_fetch of a feed spec."""
    return [
        spec.interval.total_seconds() if spec.interval else None,
        json.dumps(list(spec.tags), ensure_ascii=False),
        int(spec.alert_first_fetch),
    ]


def _split_sql(script: str) -> list[str]:
    return [statement.strip() for statement in script.split(";") if statement.strip()]
