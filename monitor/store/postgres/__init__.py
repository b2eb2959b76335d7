"""The PostgreSQL store: one database shared by any number of processes; one mixin per domain, one file each.

Imported only when the config names a ``postgresql://`` database (psycopg is not loaded otherwise).
"""

from __future__ import annotations

from monitor.store.postgres.cluster import ClusterMixin
from monitor.store.postgres.dashboard import DashboardMixin
from monitor.store.postgres.feeds import FeedsMixin
from monitor.store.postgres.items import ItemsMixin
from monitor.store.postgres.outbox import OutboxMixin
from monitor.store.postgres.prefilter import PrefilterMixin
from monitor.store.postgres.reports import ReportsMixin
from monitor.store.postgres.schema import MIGRATIONS
from monitor.store.postgres.search import SearchMixin
from monitor.store.postgres.websub import WebSubMixin

__all__ = ["MIGRATIONS", "PostgresStorage"]


class PostgresStorage(
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
    """A news-monitor database on a PostgreSQL server (see :class:`monitor.store.Storage`)."""
