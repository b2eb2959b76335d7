"""Reports for people and for the health checks: feed status, feed histories, counts (as the SQLite store)."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.store.postgres.schema import PostgresBase, db_time, from_db_time, to_db_time
from monitor.store.records import BackfillMatch, FeedHistory, FeedStatus

_COUNTED = frozenset({"feeds", "items", "entities", "matches", "alerts", "story_keys"})


class ReportsMixin(PostgresBase):
    def feed_status(self) -> list[FeedStatus]:
        rows = self._read(
            """
            SELECT feeds.name, feeds.url, feeds.active, feeds.last_success_at, feeds.last_error,
                   feeds.last_error_at, feeds.error_count, feeds.next_poll_at, feeds.next_poll_reason,
                   (SELECT count(*) FROM items WHERE items.feed_id = feeds.id)
            FROM feeds ORDER BY feeds.name
            """
        )
        return [
            FeedStatus(
                name=row[0],
                url=row[1],
                active=bool(row[2]),
                last_success_at=from_db_time(row[3]),
                last_error=row[4],
                last_error_at=from_db_time(row[5]),
                error_count=row[6],
                next_poll_at=from_db_time(row[7]),
                next_poll_reason=row[8],
                items=row[9],
            )
            for row in rows
        ]

    def feed_histories(self, now: datetime, window: timedelta) -> list[FeedHistory]:
        """Per active feed: failing since, last error, newest item, items within ``window``, reported state."""
        rows = self._read(
            """
            SELECT feeds.name, feeds.failing_since, feeds.last_error, feeds.health_state,
                   (SELECT max(first_seen_at) FROM items WHERE items.feed_id = feeds.id),
                   (SELECT count(*) FROM items WHERE items.feed_id = feeds.id
                        AND COALESCE(items.published_at, items.first_seen_at) > %s)
            FROM feeds WHERE active ORDER BY name
            """,
            [to_db_time(now - window)],
        )
        return [
            FeedHistory(
                name=row[0],
                failing_since=from_db_time(row[1]),
                last_error=row[2],
                state=row[3],
                last_item_at=from_db_time(row[4]),
                items_in_window=row[5],
            )
            for row in rows
        ]

    def backfill_matches(self, *, rule: str | None = None, limit: int = 50) -> list[BackfillMatch]:
        """Matches on items of a feed's first fetch (alerted to nobody), newest first."""
        rows = self._read(
            """
            SELECT items.id, matches.rule, feeds.name, items.title, items.link, items.published_at,
                   items.first_seen_at, matches.matched_at
            FROM matches JOIN items ON items.id = matches.item_id JOIN feeds ON feeds.id = items.feed_id
            WHERE items.backfill AND (%s::text IS NULL OR matches.rule = %s)
            ORDER BY matches.matched_at DESC, matches.id DESC LIMIT %s
            """,
            [rule, rule, limit],
        )
        return [
            BackfillMatch(
                item_id=row[0],
                rule=row[1],
                feed=row[2],
                title=row[3],
                link=row[4],
                published_at=from_db_time(row[5]),
                first_seen_at=db_time(row[6]),
                matched_at=db_time(row[7]),
            )
            for row in rows
        ]

    def backfill_match_count(self) -> int:
        """How many matches came with a feed's first fetch (and so alerted nobody)."""
        rows = self._read("SELECT count(*) FROM matches JOIN items ON items.id = matches.item_id WHERE items.backfill")
        return int(rows[0][0])

    def count(self, table: str) -> int:
        if table not in _COUNTED:
            raise ValueError(f"no table {table!r} to count")
        return int(self._read(f"SELECT count(*) FROM {table}")[0][0])
