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
    EntityCount,
    FeedHistory,
    FeedOutcome,
    FeedState,
    FeedStatus,
    FeedWrite,
    Instance,
    InstanceStatus,
    Intent,
    ItemSummary,
    ItemWrite,
    KnownItem,
    MatchedItem,
    MatchWrite,
    PendingAlert,
    SearchHit,
    Snapshot,
    StoredItem,
    StoryAlerts,
    StoryCandidate,
    StoryInfo,
    StoryJoin,
    Subscription,
    SubscriptionState,
    SurgeAlertWrite,
    SurgeRecord,
    SurgeWrite,
    WordCandidate,
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
    "EntityCount",
    "FeedHistory",
    "FeedOutcome",
    "FeedState",
    "FeedStatus",
    "FeedWrite",
    "Instance",
    "InstanceStatus",
    "Intent",
    "ItemSummary",
    "ItemWrite",
    "KnownItem",
    "MatchedItem",
    "MatchWrite",
    "PendingAlert",
    "SearchHit",
    "Snapshot",
    "SqliteStorage",
    "Storage",
    "StoredItem",
    "StoryAlerts",
    "StoryCandidate",
    "StoryInfo",
    "StoryJoin",
    "SurgeAlertWrite",
    "SurgeRecord",
    "SurgeWrite",
    "WordCandidate",
    "Subscription",
    "SubscriptionState",
    "open_storage",
]


def open_storage(database: Path | str) -> Storage:
    """Open (creating and migrating when needed) the database named in the config: a SQLite file, or a
    PostgreSQL server for a ``postgresql://`` URL (psycopg is imported only then)."""
    from monitor.database_url import is_postgres, parse_database

    chosen = parse_database(database)
    if is_postgres(chosen):
        from monitor.store.postgres import PostgresStorage

        return PostgresStorage.open(str(chosen))
    return SqliteStorage.open(chosen)
