"""Instances and feed leases on SQLite: one daemon per file (monitor.instance), so the same contract as PostgreSQL's
with one member; the claim runs inside the write transaction, which makes it atomic against any other writer."""

from __future__ import annotations

from datetime import datetime, timedelta

from monitor.store.records import FeedState, Instance, InstanceStatus
from monitor.store.rows import FEED_COLUMNS, feed_state
from monitor.store.sqlite.schema import TIMES, SqliteBase, db_time, placeholders, to_db_time

# An instance whose heartbeat is older than this is forgotten (status already left it out long before).
FORGET_AFTER = timedelta(days=1)


class ClusterMixin(SqliteBase):
    def heartbeat(self, instance: Instance, now: datetime) -> None:
        """Register ``instance`` (at its start), or say it is alive at ``now``; long-dead instances are forgotten."""
        with self.transaction():
            self.db.execute(
                "INSERT INTO instances (id, host, pid, started_at, heartbeat_at, version) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at",
                [instance.id, instance.host, instance.pid, to_db_time(instance.started_at), to_db_time(now),
                 instance.version],
            )  # fmt: skip
            self.db.execute("DELETE FROM instances WHERE heartbeat_at < ?", [to_db_time(now - FORGET_AFTER)])

    def remove_instance(self, instance_id: str) -> None:
        """A clean stop: the instance is gone, and its feed leases with it (the feeds are due for anyone)."""
        with self.transaction():
            self.db.execute("DELETE FROM instances WHERE id = ?", [instance_id])
            self.db.execute("UPDATE feeds SET leased_by = NULL, leased_until = NULL WHERE leased_by = ?", [instance_id])

    def instances(self, now: datetime, dead_after: timedelta) -> list[InstanceStatus]:
        rows = self._read(
            "SELECT i.id, i.host, i.pid, i.started_at, i.heartbeat_at, i.version,"
            " (SELECT count(*) FROM feeds f WHERE f.leased_by = i.id AND f.leased_until > ?)"
            " FROM instances i WHERE i.heartbeat_at >= ? ORDER BY i.started_at, i.id",
            [to_db_time(now), to_db_time(now - dead_after)],
        )
        return [
            InstanceStatus(row[0], row[1], row[2], db_time(row[3]), db_time(row[4]), row[5], row[6]) for row in rows
        ]

    def claim_due_feeds(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[FeedState]:
        if limit <= 0:
            return []
        due = (
            "SELECT id FROM feeds WHERE active = 1 AND (next_poll_at IS NULL OR next_poll_at <= ?)"
            " AND (leased_until IS NULL OR leased_until <= ?) ORDER BY next_poll_at, id LIMIT ?"
        )
        if not self._read(due, [to_db_time(now), to_db_time(now), 1]):
            return []  # the usual tick: nothing due, and no write lock taken to find that out
        with self.transaction():  # BEGIN IMMEDIATE: no other writer between the choice and the lease
            ids = [row[0] for row in self.db.execute(due, [to_db_time(now), to_db_time(now), limit])]
            if not ids:
                return []
            self.db.execute(
                f"UPDATE feeds SET leased_by = ?, leased_until = ? WHERE id IN ({placeholders(ids)})",
                [owner, to_db_time(now + lease), *ids],
            )
            rows = self.db.execute(
                f"SELECT {FEED_COLUMNS} FROM feeds WHERE id IN ({placeholders(ids)}) ORDER BY next_poll_at, id", ids
            ).fetchall()
        return [feed_state(row, TIMES) for row in rows]

    def release_feeds(self, owner: str) -> int:
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE feeds SET leased_by = NULL, leased_until = NULL WHERE leased_by = ?", [owner]
            )
            return cursor.rowcount

    def holds_singletons(self) -> bool:
        """On SQLite the one daemon of the file runs the singletons."""
        return True
