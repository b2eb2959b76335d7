"""What the web dashboard reads: alerts by story, entity counts over time, items per day per feed.

Read-only, and every query bounded: a LIMIT on rows returned, and a time
range that the ``items_first_seen`` index serves, so a page costs the same on
a year of history as on a week.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from monitor.store.records import AlertStatus, EntityCount, HealthState, ItemSummary, StoryAlerts
from monitor.store.rows import item_summary, story_alerts
from monitor.store.sqlite.outbox import OutboxMixin
from monitor.store.sqlite.schema import TIMES, chunks, from_db_time, placeholders, to_db_time

Bucket = Literal["hour", "day"]
# How much of an ISO 8601 time names its hour ("2026-11-27T08") or its day ("2026-11-27").
_PREFIX = {"hour": 13, "day": 10}


class DashboardMixin(OutboxMixin):
    def story_alerts(self, *, status: AlertStatus | None = None, limit: int = 200) -> list[StoryAlerts]:
        """The newest ``limit`` outbox rows (of one status), grouped by story, newest story first."""
        state = None if status is None else str(status)
        rows = self._alert_records(
            "(? IS NULL OR alerts.status = ?) ORDER BY alerts.id DESC LIMIT ?", [state, state, max(limit, 0)]
        )
        return story_alerts(rows, self.story_outlet_links)

    def top_entities(self, since: datetime, *, types: Sequence[str] = (), limit: int = 20) -> list[EntityCount]:
        """The entities mentioned by the most items first seen since ``since`` (of these types), most first."""
        kinds = list(types)
        type_filter = f" AND entities.type IN ({placeholders(kinds)})" if kinds else ""
        rows = self._read(
            "SELECT entities.canonical, entities.type, count(DISTINCT entities.item_id) AS mentioned"
            # CROSS JOIN keeps items outside: the time range (items_first_seen) picks the few rows, where
            # grouping by entities_canonical would read every mention ever stored.
            " FROM items CROSS JOIN entities ON entities.item_id = items.id"
            f" WHERE items.first_seen_at >= ?{type_filter}"
            " GROUP BY entities.canonical, entities.type ORDER BY mentioned DESC, entities.canonical LIMIT ?",
            [to_db_time(since), *kinds, max(limit, 0)],
        )
        return [EntityCount(name, kind, count) for name, kind, count in rows]

    def entity_mentions(
        self,
        entities: Sequence[tuple[str, str]],
        since: datetime,
        *,
        bucket: Bucket = "hour",
        window: timedelta | None = None,
    ) -> dict[tuple[str, str], dict[datetime, int]]:
        """Per (name, type): how many items first seen in each hour (or UTC day) since ``since`` mention it.

        With ``window``, each item counts in the hour it happened (see :func:`_happened`). Hours or days
        without a mention are absent.
        """
        wanted = set(entities)
        found: dict[tuple[str, str], dict[datetime, int]] = {key: {} for key in wanted}
        names = sorted({name for name, _ in wanted})
        width = _PREFIX[bucket]
        for chunk in chunks(names):
            for name, kind, moment, count in self._read(
                f"SELECT entities.canonical, entities.type, substr({_happened(window)}, 1, {width}) AS moment,"
                " count(DISTINCT entities.item_id)"
                " FROM items CROSS JOIN entities ON entities.item_id = items.id"  # the time range first
                f" WHERE entities.canonical IN ({placeholders(chunk)}) AND items.first_seen_at >= ?"
                " GROUP BY entities.canonical, entities.type, moment",
                [*_days(window), *chunk, to_db_time(since)],
            ):
                if (name, kind) in wanted:
                    found[(name, kind)][_bucket_start(moment, bucket)] = count
        return found

    def entity_items(self, name: str, kind: str, since: datetime, *, limit: int = 50) -> list[ItemSummary]:
        """Items first seen since ``since`` that mention this entity, newest first."""
        rows = self._read(
            "SELECT items.id, feeds.name, items.title, items.link, items.published_at, items.first_seen_at"
            " FROM items JOIN feeds ON feeds.id = items.feed_id"
            " WHERE items.id IN (SELECT item_id FROM entities WHERE canonical = ? AND type = ?)"
            " AND items.first_seen_at >= ? ORDER BY items.first_seen_at DESC, items.id DESC LIMIT ?",
            [name, kind, to_db_time(since), max(limit, 0)],
        )
        return [item_summary(row, TIMES) for row in rows]

    def feed_items_per_day(self, since: datetime, *, window: timedelta | None = None) -> dict[str, dict[date, int]]:
        """Per feed name: items first seen on each UTC day since ``since`` (days without one are absent); with
        ``window``, each counted on the day it happened (see :func:`_happened`)."""
        found: dict[str, dict[date, int]] = {}
        for feed, day, count in self._read(
            f"SELECT feeds.name, substr({_happened(window)}, 1, 10) AS day, count(*)"
            # The time range picks the rows (grouping by the feed_id index would read every item stored).
            " FROM items INDEXED BY items_first_seen JOIN feeds ON feeds.id = items.feed_id"
            " WHERE items.first_seen_at >= ? GROUP BY items.feed_id, day",
            [*_days(window), to_db_time(since)],
        ):
            found.setdefault(feed, {})[date.fromisoformat(day)] = count
        return found

    def feed_health_states(self) -> dict[str, HealthState]:
        """Each feed's health as last reported (ok, failing, silent)."""
        return {name: state for name, state in self._read("SELECT name, health_state FROM feeds")}

    def first_seen_of_newest(self, count: int) -> datetime | None:
        """When the ``count``-th newest stored item was first seen; None when fewer are stored."""
        rows = self._read(
            "SELECT first_seen_at FROM items ORDER BY first_seen_at DESC LIMIT 1 OFFSET ?", [max(count - 1, 0)]
        )
        return from_db_time(rows[0][0]) if rows else None


def _happened(window: timedelta | None) -> str:
    """SQL for when an item happened: its published time when plausible (not after it was first seen, nor
    more than ``window`` before; the window's days are the one parameter), else when it was first seen."""
    if window is None:
        return "items.first_seen_at"
    return (
        "(CASE WHEN items.published_at IS NOT NULL"
        " AND julianday(items.published_at) BETWEEN julianday(items.first_seen_at) - ? AND julianday(items.first_seen_at)"
        " THEN items.published_at ELSE items.first_seen_at END)"
    )


def _days(window: timedelta | None) -> list[float]:
    return [] if window is None else [window / timedelta(days=1)]


def _bucket_start(prefix: str, bucket: Bucket) -> datetime:
    if bucket == "hour":
        return datetime.fromisoformat(prefix + ":00:00").replace(tzinfo=UTC)
    return datetime.fromisoformat(prefix).replace(tzinfo=UTC)
