"""The SQLite store: one file, WAL, FTS5; one mixin per domain, one file each."""

from __future__ import annotations

from monitor.store.sqlite.cluster import ClusterMixin
from monitor.store.sqlite.dashboard import DashboardMixin
from monitor.store.sqlite.feeds import FeedsMixin
from monitor.store.sqlite.items import ItemsMixin
from monitor.store.sqlite.outbox import OutboxMixin
from monitor.store.sqlite.prefilter import PrefilterMixin
from monitor.store.sqlite.reports import ReportsMixin
from monitor.store.sqlite.schema import APPLICATION_ID, MIGRATIONS
from monitor.store.sqlite.search import SearchMixin
from monitor.store.sqlite.websub import WebSubMixin

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SqliteStorage"]


class SqliteStorage(
    ClusterMixin,
    PrefilterMixin,
    DashboardMixin,
    FeedsMixin,
    ItemsMixin,
    OutboxMixin,
    SearchMixin,
    ReportsMixin,
    WebSubMixin,
):
    """A news-monitor database in one SQLite file (see :class:`monitor.store.Storage`)."""
