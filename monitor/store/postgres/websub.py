"""WebSub subscriptions: which hub pushes which feed, with the secret that signs its pushes (as the SQLite store)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg

from monitor.errors import ConflictError, NotFoundError, StorageError
from monitor.store.postgres.schema import TIMES, PostgresBase, to_db_time
from monitor.store.records import Subscription, SubscriptionState
from monitor.store.rows import (
    SUBSCRIPTION_COLUMNS,
    SUBSCRIPTION_FROM,
    SUBSCRIPTION_STATES,
)
from monitor.store.rows import subscription as _subscription


class WebSubMixin(PostgresBase):
    def subscriptions(self, feed_id: int | None = None) -> list[Subscription]:
        if feed_id is None:
            rows = self._read(f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} ORDER BY w.id")
        else:
            rows = self._read(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE w.feed_id = %s ORDER BY w.id", [feed_id]
            )
        return [_subscription(row, TIMES) for row in rows]

    def subscription(self, token: str) -> Subscription:
        rows = self._read(f"SELECT {SUBSCRIPTION_COLUMNS} FROM {SUBSCRIPTION_FROM} WHERE w.token = %s", [token])
        if not rows:
            raise NotFoundError("no WebSub subscription has that callback")
        return _subscription(rows[0], TIMES)

    def add_subscription(
        self, feed_id: int, *, hub: str, topic: str, token: str, secret: str, now: datetime
    ) -> Subscription:
        try:
            # A savepoint inside a transaction under way, so that a refused row leaves that transaction usable.
            with self._atomic(), self.conn.transaction() if self._depth else contextlib.nullcontext():
                self.conn.execute(
                    "INSERT INTO websub (feed_id, token, hub, topic, secret, state, requested_at)"
                    " VALUES (%s, %s, %s, %s, %s, 'requested', %s)",
                    [feed_id, token, hub, topic, secret, to_db_time(now)],
                )
        except StorageError as exc:
            cause = exc.__cause__
            if isinstance(cause, psycopg.errors.ForeignKeyViolation):
                raise NotFoundError(f"no feed with id {feed_id}") from None
            if isinstance(cause, psycopg.errors.UniqueViolation):
                raise ConflictError("a WebSub subscription already has that callback") from None
            raise
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
            sql, params = "state = %s, requested_at = %s, last_error = NULL", [state, at]
        elif state == "active":
            sql, params = "state = %s, verified_at = %s, lease_until = %s, last_error = NULL", [
                state, at, to_db_time(lease_until)
            ]  # fmt: skip
        else:
            sql, params = "state = %s, last_error = %s", [state, error]
        self._update(token, sql, params)

    def record_push(self, token: str, now: datetime) -> None:
        self._update(token, "last_push_at = %s", [to_db_time(now)])

    def remove_subscription(self, token: str) -> None:
        with self._atomic():
            self._execute("DELETE FROM websub WHERE token = %s", [token])

    def _update(self, token: str, assignments: str, params: Sequence[Any]) -> None:
        with self._atomic():
            cursor = self._execute(f"UPDATE websub SET {assignments} WHERE token = %s", [*params, token])
            if cursor.rowcount == 0:
                raise NotFoundError("no WebSub subscription has that callback")
