"""Records from the rows the stores read: one mapping for both backends, and the column lists they share.

Each backend keeps its own SQL (placeholders, booleans, chunking) and reads its rows; what a row of a
given column order means is said once here. Time columns read back differently (ISO 8601 text in
SQLite, ``timestamptz`` in PostgreSQL), so every function takes the backend's :class:`Times`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.errors import StorageError
from monitor.items import Item, Mention
from monitor.store.records import (
    AlertRecord,
    AlertStatus,
    BackfillMatch,
    FeedHistory,
    FeedState,
    FeedStatus,
    ItemSummary,
    MatchedItem,
    PendingAlert,
    StoredItem,
    StoryAlerts,
    StoryInfo,
    Subscription,
    SurgeRecord,
    alert_record_of_kind,
)

Row = Sequence[Any]
Outlets = Mapping[int, Sequence[tuple[str, str | None]]]  # story id -> (feed, link of its first item there)


@dataclass(frozen=True)
class Times:
    """How a backend's time columns read back: ``db_time`` for a NOT NULL one, ``from_db_time`` for one that may
    be NULL."""

    db_time: Callable[[Any], datetime]
    from_db_time: Callable[[Any], datetime | None]


# --- items ------------------------------------------------------------------------

# A stored item with its feed; the backend adds ``WHERE ...``.
STORED_ITEM_SELECT = (
    "SELECT items.id, feeds.name, items.guid, items.link, items.title, items.text, items.author,"
    " items.tags, items.published_at, items.first_seen_at, COALESCE(items.story_id, items.id),"
    " items.link_key, items.fingerprint, items.backfill, feeds.tags, items.enriched, items.feed_id"
    " FROM items JOIN feeds ON feeds.id = items.feed_id"
)


def stored_item(row: Row, mentions: Sequence[Mention], times: Times) -> StoredItem:
    """A row of :data:`STORED_ITEM_SELECT` with the item's mentions."""
    return StoredItem(
        id=row[0],
        feed=row[1],
        item=Item(
            guid=row[2],
            link=row[3],
            title=row[4],
            text=row[5],
            author=row[6],
            tags=tuple(json.loads(row[7])),
            published_at=times.from_db_time(row[8]),
        ),
        first_seen_at=times.db_time(row[9]),
        mentions=tuple(mentions),
        story_id=row[10],
        story=StoryInfo(row[11], bytes(row[12]), ()) if row[12] is not None and row[15] else None,
        backfill=bool(row[13]),
        feed_tags=tuple(json.loads(row[14])),
        feed_id=row[16],
    )


SURGE_SELECT = "SELECT rule, query, surging, checked_at, fired_at, count, usual, matching_since FROM surges"


def surge_record(row: Row, times: Times) -> SurgeRecord:
    """A row of :data:`SURGE_SELECT`."""
    return SurgeRecord(
        row[0], row[1], bool(row[2]), times.from_db_time(row[3]), times.from_db_time(row[4]), row[5], row[6],
        times.from_db_time(row[7]),
    )  # fmt: skip


def matched_item(row: Row, times: Times) -> MatchedItem:
    """A row of: item id, story id, first seen, feed name, title, link."""
    return MatchedItem(row[0], row[1], times.db_time(row[2]), row[3], row[4], row[5])


def item_summary(row: Row, times: Times) -> ItemSummary:
    """A row of: item id, feed name, title, link, published, first seen."""
    return ItemSummary(row[0], row[1], row[2], row[3], times.from_db_time(row[4]), times.db_time(row[5]))


# --- the outbox -------------------------------------------------------------------

# A pending or held alert with its item, feed and match; the backend adds ``WHERE ...``.
PENDING_ALERT_SELECT = """
    SELECT alerts.id, alerts.rule, alerts.channel, alerts.attempts, alerts.created_at,
           feeds.name, items.title, items.link, items.text, items.published_at,
           matches.explanation, alerts.status, alerts.story_id, alerts.due_since, alerts.item_id,
           alerts.kind, alerts.payload
    FROM alerts
    JOIN items ON items.id = alerts.item_id
    JOIN feeds ON feeds.id = items.feed_id
    LEFT JOIN matches ON matches.item_id = alerts.item_id AND matches.rule = alerts.rule
"""


def pending_alert(row: Row, outlets: Outlets, times: Times) -> PendingAlert:
    """A row of :data:`PENDING_ALERT_SELECT`; ``outlets`` by story, the alert's own feed left out."""
    runs = outlets.get(row[12], ())
    return PendingAlert(
        id=row[0],
        rule=row[1],
        channel=row[2],
        attempts=row[3],
        created_at=times.db_time(row[4]),
        feed=row[5],
        title=row[6],
        link=row[7],
        text=row[8],
        published_at=times.from_db_time(row[9]),
        hits=tuple(json.loads(row[10])) if row[10] else (),
        status=AlertStatus(row[11]),
        story_id=row[12],
        due_since=times.from_db_time(row[13]),
        outlets=tuple(feed for feed, _ in runs if feed != row[5]),
        outlet_links=tuple(run for run in runs if run[0] != row[5]),
        item_id=row[14],
        kind=row[15],
        payload=json.loads(row[16]) if row[16] else None,
    )


ALERT_COLUMNS = (
    "alerts.id, alerts.status, alerts.reason, alerts.rule, alerts.channel, alerts.item_id, alerts.story_id,"
    " alerts.attempts, alerts.created_at, alerts.next_attempt_at, alerts.sent_at, alerts.last_error,"
    " feeds.name, items.title, items.link, alerts.kind, alerts.payload"
)
# An outbox row with its item and feed; the backend adds ``WHERE ...``.
ALERT_SELECT = (
    f"SELECT {ALERT_COLUMNS} FROM alerts JOIN items ON items.id = alerts.item_id JOIN feeds ON feeds.id = items.feed_id"
)


def alert_record(row: Row, outlets: Mapping[int, Sequence[str]], times: Times) -> AlertRecord:
    """A row of :data:`ALERT_SELECT`, shown as its kind shows it; ``outlets``: the feeds that ran each story."""
    return alert_record_of_kind(
        AlertRecord(
            id=row[0],
            status=AlertStatus(row[1]),
            reason=row[2],
            rule=row[3],
            channel=row[4],
            item_id=row[5],
            story_id=row[6],
            attempts=row[7],
            created_at=times.db_time(row[8]),
            next_attempt_at=times.db_time(row[9]),
            sent_at=times.from_db_time(row[10]),
            last_error=row[11],
            feed=row[12],
            title=row[13],
            link=row[14],
            outlets=tuple(outlets.get(row[6], ())),
        ),
        row[15],
        row[16],
    )


def story_alerts(records: Sequence[AlertRecord], outlet_links: Callable[[list[int]], Outlets]) -> list[StoryAlerts]:
    """Outbox rows grouped by story in the order of their first row, each story with its outlets' links."""
    grouped: dict[int, list[AlertRecord]] = {}
    for record in records:
        grouped.setdefault(record.story_id, []).append(record)
    links = outlet_links(list(grouped))
    return [StoryAlerts(story, tuple(alerts), tuple(links.get(story, ()))) for story, alerts in grouped.items()]


# --- feeds ------------------------------------------------------------------------

FEED_COLUMNS = (
    "id, name, url, etag, last_modified, first_fetch_done, error_count, next_poll_at,"
    " source, interval_seconds, tags, alert_first_fetch, title, last_polled_at, body_hash"
)


def feed_state(row: Row, times: Times) -> FeedState:
    """A row of :data:`FEED_COLUMNS`."""
    return FeedState(
        id=row[0],
        name=row[1],
        url=row[2],
        etag=row[3],
        last_modified=row[4],
        first_fetch_done=bool(row[5]),
        error_count=row[6],
        next_poll_at=times.from_db_time(row[7]),
        source=row[8],
        interval=timedelta(seconds=row[9]) if row[9] else None,
        tags=tuple(json.loads(row[10])),
        alert_first_fetch=bool(row[11]),
        title=row[12],
        last_polled_at=times.from_db_time(row[13]),
        body_hash=row[14],
    )


# --- reports ----------------------------------------------------------------------

FEED_STATUS_SELECT = """
    SELECT feeds.name, feeds.url, feeds.active, feeds.last_success_at, feeds.last_error,
           feeds.last_error_at, feeds.error_count, feeds.next_poll_at, feeds.next_poll_reason,
           (SELECT count(*) FROM items WHERE items.feed_id = feeds.id)
    FROM feeds ORDER BY feeds.name
"""


def feed_status(row: Row, times: Times) -> FeedStatus:
    """A row of :data:`FEED_STATUS_SELECT`."""
    return FeedStatus(
        name=row[0],
        url=row[1],
        active=bool(row[2]),
        last_success_at=times.from_db_time(row[3]),
        last_error=row[4],
        last_error_at=times.from_db_time(row[5]),
        error_count=row[6],
        next_poll_at=times.from_db_time(row[7]),
        next_poll_reason=row[8],
        items=row[9],
    )


def feed_history(row: Row, times: Times) -> FeedHistory:
    """A row of: feed name, failing since, last error, health state, newest item, items in the window."""
    return FeedHistory(
        name=row[0],
        failing_since=times.from_db_time(row[1]),
        last_error=row[2],
        state=row[3],
        last_item_at=times.from_db_time(row[4]),
        items_in_window=row[5],
    )


def backfill_match(row: Row, times: Times) -> BackfillMatch:
    """A row of: item id, rule, feed name, title, link, published, first seen, matched."""
    return BackfillMatch(
        item_id=row[0],
        rule=row[1],
        feed=row[2],
        title=row[3],
        link=row[4],
        published_at=times.from_db_time(row[5]),
        first_seen_at=times.db_time(row[6]),
        matched_at=times.db_time(row[7]),
    )


# --- WebSub -----------------------------------------------------------------------

SUBSCRIPTION_COLUMNS = (
    "w.id, w.feed_id, f.name, f.active, w.token, w.hub, w.topic, w.secret, w.state, w.requested_at,"
    " w.verified_at, w.lease_until, w.last_error, w.last_push_at"
)
SUBSCRIPTION_FROM = "websub w JOIN feeds f ON f.id = w.feed_id"
SUBSCRIPTION_STATES = ("requested", "active", "denied", "failed", "unsubscribing")


def subscription(row: Row, times: Times) -> Subscription:
    """A row of :data:`SUBSCRIPTION_COLUMNS`; StorageError for a state this version does not know."""
    if row[8] not in SUBSCRIPTION_STATES:
        raise StorageError(f"WebSub subscription {row[0]} has an unknown state {row[8]!r}")
    return Subscription(
        id=row[0],
        feed_id=row[1],
        feed=row[2],
        feed_active=bool(row[3]),
        token=row[4],
        hub=row[5],
        topic=row[6],
        secret=row[7],
        state=row[8],
        requested_at=times.db_time(row[9]),
        verified_at=times.from_db_time(row[10]),
        lease_until=times.from_db_time(row[11]),
        last_error=row[12],
        last_push_at=times.from_db_time(row[13]),
    )
