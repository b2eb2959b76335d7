"""What the web dashboard reads: alerts by story, entity counts over time, items per day per feed.

As the SQLite store's: read-only, every query bounded by a LIMIT or a time range on
``items_first_seen``. Hours and days are UTC (the connection's time zone).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Literal

from monitor.store.postgres.outbox import OutboxMixin
from monitor.store.postgres.schema import TIMES, db_time, from_db_time, to_db_time
from monitor.store.records import AlertStatus, EntityCount, HealthState, ItemSummary, StoryAlerts
from monitor.store.rows import item_summary, story_alerts

Bucket = Literal["hour", "day"]


class DashboardMixin(OutboxMixin):
    def story_alerts(self, *, status: AlertStatus | None = None, limit: int = 200) -> list[StoryAlerts]:
        """The newest ``limit`` outbox rows (of one status), grouped by story, newest story first."""
        state = None if status is None else str(status)
        rows = self._alert_records(
            "(%s::text IS NULL OR alerts.status = %s) ORDER BY alerts.id DESC LIMIT %s", [state, state, max(limit, 0)]
        )
        return story_alerts(rows, self.story_outlet_links)

    def top_entities(self, since: datetime, *, types: Sequence[str] = (), limit: int = 20) -> list[EntityCount]:
        """The entities mentioned by the most items first seen since ``since`` (of these types), most first."""
        kinds = list(types)
        rows = self._read(
            "SELECT entities.canonical, entities.type, count(DISTINCT entities.item_id) AS mentioned"
            " FROM items JOIN entities ON entities.item_id = items.id"
            " WHERE items.first_seen_at >= %s AND (cardinality(%s::text[]) = 0 OR entities.type = ANY(%s))"
            ' GROUP BY entities.canonical, entities.type ORDER BY mentioned DESC, entities.canonical COLLATE "C"'
            " LIMIT %s",
            [to_db_time(since), kinds, kinds, max(limit, 0)],
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
        """Per (name, type): how many items first seen in each hour (or UTC day) since ``since`` mention it;
        with ``window``, each counted when it happened (see :func:`_happened`)."""
        wanted = set(entities)
        found: dict[tuple[str, str], dict[datetime, int]] = {key: {} for key in wanted}
        names = sorted({name for name, _ in wanted})
        if not names:
            return found
        unit = "hour" if bucket == "hour" else "day"
        for name, kind, moment, count in self._read(
            f"SELECT entities.canonical, entities.type, date_trunc(%s, {_happened(window)}) AS moment,"
            " count(DISTINCT entities.item_id)"
            " FROM entities JOIN items ON items.id = entities.item_id"
            " WHERE entities.canonical = ANY(%s) AND items.first_seen_at >= %s"
            " GROUP BY entities.canonical, entities.type, moment",
            [unit, *_window(window), names, to_db_time(since)],
        ):
            if (name, kind) in wanted:
                found[(name, kind)][db_time(moment)] = count
        return found

    def entity_items(self, name: str, kind: str, since: datetime, *, limit: int = 50) -> list[ItemSummary]:
        """Items first seen since ``since`` that mention this entity, newest first."""
        rows = self._read(
            "SELECT items.id, feeds.name, items.title, items.link, items.published_at, items.first_seen_at"
            " FROM items JOIN feeds ON feeds.id = items.feed_id"
            " WHERE items.id IN (SELECT item_id FROM entities WHERE canonical = %s AND type = %s)"
            " AND items.first_seen_at >= %s ORDER BY items.first_seen_at DESC, items.id DESC LIMIT %s",
            [name, kind, to_db_time(since), max(limit, 0)],
        )
        return [item_summary(row, TIMES) for row in rows]

    def feed_items_per_day(self, since: datetime, *, window: timedelta | None = None) -> dict[str, dict[date, int]]:
        """Per feed name: items first seen on each UTC day since ``since`` (days without one are absent); with
        ``window``, each counted on the day it happened (see :func:`_happened`)."""
        found: dict[str, dict[date, int]] = {}
        for feed, day, count in self._read(
            f"SELECT feeds.name, ({_happened(window)} AT TIME ZONE 'UTC')::date AS day, count(*)"
            " FROM items JOIN feeds ON feeds.id = items.feed_id WHERE items.first_seen_at >= %s"
            " GROUP BY feeds.name, day",
            [*_window(window), to_db_time(since)],
        ):
            found.setdefault(feed, {})[day] = count
        return found

    def feed_health_states(self) -> dict[str, HealthState]:
        """Each feed's health as last reported (ok, failing, silent)."""
        return {name: state for name, state in self._read("SELECT name, health_state FROM feeds")}

    def first_seen_of_newest(self, count: int) -> datetime | None:
        """When the ``count``-th newest stored item was first seen; None when fewer are stored."""
        rows = self._read(
            "SELECT first_seen_at FROM items ORDER BY first_seen_at DESC LIMIT 1 OFFSET %s", [max(count - 1, 0)]
        )
        return from_db_time(rows[0][0]) if rows else None


def _happened(window: timedelta | None) -> str:
    """SQL for when an item happened: its published time when plausible (not after it was first seen, nor
    more than ``window`` before; the window is the one parameter), else when it was first seen."""
    if window is None:
        return "items.first_seen_at"
    return (
        "(CASE WHEN items.published_at IS NOT NULL"
        " AND items.published_at BETWEEN items.first_seen_at - %s::interval AND items.first_seen_at"
        " THEN items.published_at ELSE items.first_seen_at END)"
    )


def _window(window: timedelta | None) -> list[timedelta]:
    return [] if window is None else [window]
