"""Feeds: which ones to poll, their settings, validators, poll outcomes and health (as the SQLite store)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from monitor.errors import ConflictError, NotFoundError
from monitor.items import FeedSpec
from monitor.store.postgres.schema import TIMES, PostgresBase, to_db_time
from monitor.store.records import FeedOutcome, FeedState, HealthState
from monitor.store.rows import FEED_COLUMNS, feed_state


class FeedsMixin(PostgresBase):
    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None:
        """Make the feeds of the config the config's feeds (see the SQLite store: the same rules)."""
        with self.transaction():
            for spec in feeds:
                row = self._execute("SELECT id, url FROM feeds WHERE name = %s", [spec.name]).fetchone()
                if row is None:
                    self._insert_feed(spec, "config", now)
                    continue
                if row[1] != spec.url:
                    self._execute(
                        "UPDATE feeds SET url = %s, etag = NULL, last_modified = NULL, body_hash = NULL,"
                        " next_poll_at = %s, next_poll_reason = 'url changed' WHERE id = %s",
                        [spec.url, to_db_time(now), row[0]],
                    )
                self._execute(
                    "UPDATE feeds SET active = TRUE, source = 'config', interval_seconds = %s, tags = %s,"
                    " alert_first_fetch = %s WHERE id = %s",
                    [*_spec_columns(spec), row[0]],
                )
            self._execute(
                "UPDATE feeds SET active = FALSE WHERE source = 'config' AND NOT (name = ANY(%s))",
                [[spec.name for spec in feeds]],
            )

    def add_feed(self, spec: FeedSpec, now: datetime) -> None:
        """Add a feed from the CLI; due at once. Raises ConflictError if the name or URL is taken."""
        self.add_feeds([spec], now)

    def add_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> None:
        """Add feeds from the CLI in one transaction, each as :meth:`add_feed` would (all or none)."""
        with self.transaction():
            active_by_name: dict[str, bool] = {}
            name_by_url: dict[str, str] = {}
            for name, url, active in self._execute("SELECT name, url, active FROM feeds ORDER BY id").fetchall():
                active_by_name[name] = bool(active)
                name_by_url.setdefault(url, name)
            revived: list[list[Any]] = []
            inserted: list[list[Any]] = []
            for spec in specs:
                holder = name_by_url.get(spec.url, spec.name)
                if active_by_name.get(spec.name) or holder != spec.name:
                    taken = spec.name if active_by_name.get(spec.name) else holder
                    raise ConflictError(f"a feed named {taken!r} already has that name or URL")
                if spec.name in active_by_name:
                    revived.append([spec.url, *_spec_columns(spec), to_db_time(now), spec.name])
                else:
                    inserted.append([spec.name, spec.url, "cli", *_spec_columns(spec), to_db_time(now)])
                active_by_name[spec.name] = True
                name_by_url[spec.url] = spec.name
            with self.conn.cursor() as cursor:
                if revived:
                    cursor.executemany(
                        "UPDATE feeds SET active = TRUE, source = 'cli', url = %s, etag = NULL, last_modified = NULL,"
                        " body_hash = NULL, interval_seconds = %s, tags = %s, alert_first_fetch = %s,"
                        " next_poll_at = %s, next_poll_reason = 'added' WHERE name = %s",
                        revived,
                    )
                if inserted:
                    cursor.executemany(
                        "INSERT INTO feeds (name, url, source, interval_seconds, tags, alert_first_fetch,"
                        " next_poll_at, next_poll_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, 'new feed')",
                        inserted,
                    )

    def remove_feed(self, name: str) -> None:
        """Stop polling a CLI feed (its items stay); NotFoundError, or ConflictError for a config feed."""
        with self.transaction():
            row = self._execute("SELECT source, active FROM feeds WHERE name = %s", [name]).fetchone()
            if row is None or not row[1]:
                raise NotFoundError(f"no feed named {name!r}")
            if row[0] == "config":
                raise ConflictError(f"feed {name!r} is declared in monitor.yaml: remove it there")
            self._execute("UPDATE feeds SET active = FALSE WHERE name = %s", [name])

    def _insert_feed(self, spec: FeedSpec, source: str, now: datetime) -> None:
        self._execute(
            "INSERT INTO feeds (name, url, source, interval_seconds, tags, alert_first_fetch, next_poll_at,"
            " next_poll_reason) VALUES (%s, %s, %s, %s, %s, %s, %s, 'new feed')",
            [spec.name, spec.url, source, *_spec_columns(spec), to_db_time(now)],
        )

    def feeds(self, *, active_only: bool = True) -> list[FeedState]:
        where = "WHERE active" if active_only else ""
        return [feed_state(row, TIMES) for row in self._read(f"SELECT {FEED_COLUMNS} FROM feeds {where} ORDER BY name")]

    def feed(self, name: str) -> FeedState:
        """The active feed of that name; NotFoundError (listing the feeds there are) otherwise."""
        rows = self._read(f"SELECT {FEED_COLUMNS} FROM feeds WHERE active AND name = %s", [name])
        if not rows:
            known = ", ".join(feed.name for feed in self.feeds()) or "none"
            raise NotFoundError(f"no feed named {name!r} (feeds: {known})")
        return feed_state(rows[0], TIMES)

    def feeds_due(self, now: datetime) -> list[FeedState]:
        rows = self._read(
            f"SELECT {FEED_COLUMNS}"
            " FROM feeds WHERE active AND (next_poll_at IS NULL OR next_poll_at <= %s)"
            " ORDER BY next_poll_at NULLS FIRST, id",
            [to_db_time(now)],
        )
        return [feed_state(row, TIMES) for row in rows]

    def feed_tags(self) -> dict[str, tuple[str, ...]]:
        """The tags of every feed by name (for rules that test ``tag:``)."""
        return {name: tuple(json.loads(tags)) for name, tags in self._read("SELECT name, tags FROM feeds")}

    def entries_last_week(self, feed_id: int, now: datetime) -> int:
        """The feed's items published (else first seen) in the week before ``now``."""
        rows = self._read(
            "SELECT count(*) FROM items WHERE feed_id = %s AND COALESCE(published_at, first_seen_at) > %s"
            " AND COALESCE(published_at, first_seen_at) <= %s",
            [feed_id, to_db_time(now - timedelta(days=7)), to_db_time(now)],
        )
        return int(rows[0][0])

    def record_feed_outcome(self, outcome: FeedOutcome) -> None:
        """A poll that stored nothing: the feed was unchanged, or the poll failed (``error``)."""
        now = to_db_time(outcome.polled_at)
        with self._atomic():
            if outcome.error is None:
                self._execute(
                    "UPDATE feeds SET last_polled_at = %s, last_success_at = %s, error_count = 0, last_error = NULL,"
                    " failing_since = NULL, next_poll_at = %s, next_poll_reason = %s, leased_by = NULL, leased_until = NULL"
                    " WHERE id = %s",
                    [now, now, to_db_time(outcome.next_poll_at), outcome.next_poll_reason, outcome.feed_id],
                )
            else:
                self._execute(
                    "UPDATE feeds SET last_polled_at = %s, last_error = %s, last_error_at = %s,"
                    " failing_since = COALESCE(failing_since, %s),"
                    " error_count = error_count + 1, next_poll_at = %s, next_poll_reason = %s,"
                    " leased_by = NULL, leased_until = NULL WHERE id = %s",
                    [now, outcome.error, now, now, to_db_time(outcome.next_poll_at), outcome.next_poll_reason,
                     outcome.feed_id],
                )  # fmt: skip

    def reschedule_feed(self, feed_id: int, at: datetime, reason: str) -> None:
        """Move a feed's next poll (its interval changed); nothing else about it changes."""
        with self._atomic():
            self._execute(
                "UPDATE feeds SET next_poll_at = %s, next_poll_reason = %s WHERE id = %s",
                [to_db_time(at), reason, feed_id],
            )

    def set_feed_health(self, name: str, state: HealthState) -> None:
        with self._atomic():
            self._execute("UPDATE feeds SET health_state = %s WHERE name = %s", [state, name])


def _spec_columns(spec: FeedSpec) -> list[Any]:
    """interval_seconds, tags, alert_first_fetch of a feed spec."""
    return [
        spec.interval.total_seconds() if spec.interval else None,
        json.dumps(list(spec.tags), ensure_ascii=False),
        bool(spec.alert_first_fetch),
    ]
