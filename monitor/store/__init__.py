"""All SQL lives under here: the storage interface, its records, and the SQLite implementation.

    from monitor.store import open_storage
    with open_storage(path) as store:
        store.feeds()
"""

from __future__ import annotations

from pathlib import Path

from monitor.store.protocol import Storage
from monitor.store.records import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    AlertHistory,
    AlertRecord,
    AlertStatus,
    AlertWrite,
    BackfillMatch,
    FeedHistory,
    FeedOutcome,
    FeedState,
    FeedStatus,
    FeedWrite,
    Intent,
    ItemWrite,
    KnownItem,
    MatchWrite,
    PendingAlert,
    SearchHit,
    Snapshot,
    StoredItem,
    StoryCandidate,
    StoryInfo,
    StoryJoin,
    Subscription,
    SubscriptionState,
)
from monitor.store.sqlite import SqliteStorage

__all__ = [
    "HIGHLIGHT_END",
    "HIGHLIGHT_START",
    "AlertHistory",
    "AlertRecord",
    "AlertStatus",
    "AlertWrite",
    "BackfillMatch",
    "FeedHistory",
    "FeedOutcome",
    "FeedState",
    "FeedStatus",
    "FeedWrite",
    "Intent",
    "ItemWrite",
    "KnownItem",
    "MatchWrite",
    "PendingAlert",
    "SearchHit",
    "Snapshot",
    "SqliteStorage",
    "Storage",
    "StoredItem",
    "StoryCandidate",
    "StoryInfo",
    "StoryJoin",
    "Subscription",
    "SubscriptionState",
    "open_storage",
]


def open_storage(database: Path | str) -> Storage:
    """Open (creating and migrating when needed) the database named in the config."""
    return SqliteStorage.open(database)
