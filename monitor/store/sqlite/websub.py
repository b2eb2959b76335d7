"""WebSub subscriptions: which hub pushes which feed, with the secret that signs its pushes."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.errors import ConflictError, NotFoundError
from monitor.store.records import Subscription, SubscriptionState
from monitor.store.rows import (
    SUBSCRIPTION_COLUMNS,
    SUBSCRIPTION_FROM,
    SUBSCRIPTION_STATES,
)
from monitor.store.rows import subscription as _subscription
from monitor.store.sqlite.schema import TIMES, SqliteBase, to_db_time


class WebSubMixin(SqliteBase):
    def subscriptions(self, feed_id: int | None = None) -> list[Subscription]:
        if feed_id is None:
            rows = self._read(f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} ORDER BY w.id")
        else:
            rows = self._read(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE w.feed_id = ? ORDER BY w.id", [feed_id]
            )
        return [_subscription(row, TIMES) for row in rows]

    def subscription(self, token: str) -> Subscription:
        rows = self._read(f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE w.token = ?", [token])
        if not rows:
            raise NotFoundError("no WebSub subscription has that callback")
        return _subscription(rows[0], TIMES)

    def add_subscription(
        self, feed_id: int, *, hub: str, topic: str, token: str, secret: str, now: datetime
    ) -> Subscription:
        with self.transaction():
            try:
                self.db.execute(
                    "INSERT INTO websub (feed_id, token, hub, topic, secret, state, requested_at)"
                    " VALUES (?, ?, ?, ?, ?, 'requested', ?)",
                    [feed_id, token, hub, topic, secret, to_db_time(now)],
                )
            except sqlite3.IntegrityError as exc:
                if "FOREIGN KEY" in str(exc):
                    raise NotFoundError(f"no feed with id {feed_id}") from None
                raise ConflictError("a WebSub subscription already has that callback") from None
        return self.subscription(token)

    def mark_subscription(
        self,
        token: str,
        state: SubscriptionState,
        now: datetime,
        *,
        lease_until: datetime | None = None,
        error: str | None = None,
    ) -> None:
        if state not in SUBSCRIPTION_STATES:
            raise ValueError(f"unknown subscription state {state!r}; expected one of {', '.join(SUBSCRIPTION_STATES)}")
        at = to_db_time(now)
        if state in ("requested", "unsubscribing"):
            sql, params = "state = ?, requested_at = ?, last_error = NULL", [state, at]
        elif state == "active":
            sql, params = "state = ?, verified_at = ?, lease_until = ?, last_error = NULL", [
                state, at, to_db_time(lease_until)
            ]  # fmt: skip
        else:
            sql, params = "state = ?, last_error = ?", [state, error]
        self._update(token, sql, params)

    def record_push(self, token: str, now: datetime) -> None:
        self._update(token, "last_push_at = ?", [to_db_time(now)])

    def remove_subscription(self, token: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM websub WHERE token = ?", [token])

    def _update(self, token: str, assignments: str, params: Sequence[Any]) -> None:
        with self.transaction():
            cursor = self.db.execute(f"UPDATE websub SET {assignments} WHERE token = ?", [*params, token])
            if cursor.rowcount == 0:
                raise NotFoundError("no WebSub subscription has that callback")
