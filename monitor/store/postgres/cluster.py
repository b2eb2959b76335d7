"""Instances, feed leases and the singletons' lock on PostgreSQL, where any number of instances share one database.

Feeds are claimed with ``FOR UPDATE SKIP LOCKED``: two instances claiming at the same moment pass over each
other's rows instead of waiting, and a feed is leased to one of them. The claim takes no writers' turn (it is one
statement, atomic alone). The singletons (digest release, feed-health reports, retention, WebSub renewals) run on
the instance that holds a session-level advisory lock on a connection of its own: when that instance dies, its
session ends, the server drops the lock, and the next instance to ask takes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from monitor.store.postgres.schema import TIMES, PostgresBase, connection_parameters, db_time, to_db_time
from monitor.store.records import FeedState, Instance, InstanceStatus
from monitor.store.rows import FEED_COLUMNS, feed_state

SINGLETON_LOCK = 0x4E4D4F4E_00000003  # "NMON" + 3: see schema.py for the others
FORGET_AFTER = timedelta(days=1)


class ClusterMixin(PostgresBase):
    _singleton_conn: psycopg.Connection[Any] | None = None
    _singleton_held: bool = False

    def heartbeat(self, instance: Instance, now: datetime) -> None:
        """Register ``instance`` (at its start), or say it is alive at ``now``; long-dead instances are forgotten."""
        with self._atomic():
            self._execute(
                "INSERT INTO instances (id, host, pid, started_at, heartbeat_at, version) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                [instance.id, instance.host, instance.pid, to_db_time(instance.started_at), to_db_time(now),
                 instance.version],
            )  # fmt: skip
            self._execute("DELETE FROM instances WHERE heartbeat_at < %s", [to_db_time(now - FORGET_AFTER)])

    def remove_instance(self, instance_id: str) -> None:
        """A clean stop: the instance is gone, and its feed leases with it (the feeds are due for anyone)."""
        with self._atomic():
            self._execute("DELETE FROM instances WHERE id = %s", [instance_id])
            self._execute("UPDATE feeds SET leased_by = NULL, leased_until = NULL WHERE leased_by = %s", [instance_id])

    def instances(self, now: datetime, dead_after: timedelta) -> list[InstanceStatus]:
        rows = self._read(
            "SELECT i.id, i.host, i.pid, i.started_at, i.heartbeat_at, i.version,"
            " (SELECT count(*) FROM feeds f WHERE f.leased_by = i.id AND f.leased_until > %s)"
            " FROM instances i WHERE i.heartbeat_at >= %s ORDER BY i.started_at, i.id",
            [to_db_time(now), to_db_time(now - dead_after)],
        )
        return [
            InstanceStatus(row[0], row[1], row[2], db_time(row[3]), db_time(row[4]), row[5], int(row[6]))
            for row in rows
        ]

    def claim_due_feeds(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[FeedState]:
        if limit <= 0:
            return []
        with self._atomic():
            rows = self._read(
                f"UPDATE feeds SET leased_by = %s, leased_until = %s WHERE id IN ("
                " SELECT id FROM feeds WHERE active AND (next_poll_at IS NULL OR next_poll_at <= %s)"
                " AND (leased_until IS NULL OR leased_until <= %s)"
                " ORDER BY next_poll_at NULLS FIRST, id LIMIT %s FOR UPDATE SKIP LOCKED)"
                f" RETURNING {FEED_COLUMNS}",
                [owner, to_db_time(now + lease), to_db_time(now), to_db_time(now), limit],
            )
        feeds = [feed_state(row, TIMES) for row in rows]
        feeds.sort(key=lambda feed: (feed.next_poll_at is not None, feed.next_poll_at or now, feed.id))
        return feeds

    def release_feeds(self, owner: str) -> int:
        with self._atomic():
            return self._execute(
                "UPDATE feeds SET leased_by = NULL, leased_until = NULL WHERE leased_by = %s", [owner]
            ).rowcount

    def holds_singletons(self) -> bool:
        """Whether this store's process runs the singletons now: it holds (or just took) the advisory lock.

        The lock lives on a connection of its own, so it is held as long as that session lives, whatever the
        store's own connection does. A lost session has lost the lock: False now, and the next call asks again.
        """
        try:
            conn = self._singleton_conn
            if conn is None or conn.closed:
                self._singleton_held = False
                conn = self._singleton_conn = psycopg.connect(**connection_parameters(self.url), autocommit=True)
            if self._singleton_held:
                conn.execute("SELECT 1")  # the session (and with it the lock) is still there
            else:
                self._singleton_held = bool(
                    conn.execute("SELECT pg_try_advisory_lock(%s)", [SINGLETON_LOCK]).fetchone()[0]
                )
            return self._singleton_held
        except psycopg.Error:
            self._drop_singleton()
            return False

    def _drop_singleton(self) -> None:
        conn, self._singleton_conn, self._singleton_held = self._singleton_conn, None, False
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def close(self) -> None:
        self._drop_singleton()  # the lock goes with the session: another instance takes the singletons
        super().close()
