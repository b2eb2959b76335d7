"""Reports for people and for the health checks: feed status, feed histories, counts."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.store.records import BackfillMatch, FeedHistory, FeedStatus
from monitor.store.rows import FEED_STATUS_SELECT, backfill_match, feed_history, feed_status
from monitor.store.sqlite.schema import TIMES, SqliteBase, to_db_time

_COUNTED = frozenset({"feeds", "items", "entities", "matches", "alerts", "story_keys"})


class ReportsMixin(SqliteBase):
    def feed_status(self) -> list[FeedStatus]:
        return [feed_status(row, TIMES) for row in self._read(FEED_STATUS_SELECT)]

    def feed_histories(self, now: datetime, window: timedelta) -> list[FeedHistory]:
        """Per active feed: failing since, last error, newest item, items within ``window``, reported state."""
        rows = self._read(
            """
            SELECT feeds.name, feeds.failing_since, feeds.last_error, feeds.health_state,
                   (SELECT max(first_seen_at) FROM items WHERE items.feed_id = feeds.id),
                   (SELECT count(*) FROM items WHERE items.feed_id = feeds.id
                        AND COALESCE(items.published_at, items.first_seen_at) > ?)
            FROM feeds WHERE active = 1 ORDER BY name
            """,
            [to_db_time(now - window)],
        )
        return [feed_history(row, TIMES) for row in rows]

    def backfill_matches(self, *, rule: str | None = None, limit: int = 50) -> list[BackfillMatch]:
        """Matches on items of a feed's first fetch (alerted to nobody), newest first."""
        rows = self._read(
            """
            SELECT items.id, matches.rule, feeds.name, items.title, items.link, items.published_at,
                   items.first_seen_at, matches.matched_at
            FROM matches JOIN items ON items.id = matches.item_id JOIN feeds ON feeds.id = items.feed_id
            WHERE items.backfill = 1 AND (? IS NULL OR matches.rule = ?)
            ORDER BY matches.matched_at DESC, matches.id DESC LIMIT ?
            """,
            [rule, rule, limit],
        )
        return [backfill_match(row, TIMES) for row in rows]

    def backfill_match_count(self) -> int:
        """How many matches came with a feed's first fetch (and so alerted nobody)."""
        rows = self._read(
            "SELECT count(*) FROM matches JOIN items ON items.id = matches.item_id WHERE items.backfill = 1"
        )
        return int(rows[0][0])

    def count(self, table: str) -> int:
        if table not in _COUNTED:
            raise ValueError(f"no table {table!r} to count")
        return int(self._read(f"SELECT count(*) FROM {table}")[0][0])
