"""The alert outbox: due rows for delivery, claims on them while they are sent, and what became of each send.

As the SQLite store's. A claim is one UPDATE that re-checks the row is still due and free: PostgreSQL
locks each row it updates and, when another transaction changed the row meanwhile, checks the
conditions again on the row as committed, so of two processes claiming at once exactly one gets
each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.errors import NotFoundError
from monitor.store.postgres.schema import TIMES, PostgresBase, to_db_time
from monitor.store.records import AlertRecord, AlertStatus, PendingAlert
from monitor.store.rows import ALERT_SELECT, PENDING_ALERT_SELECT, alert_record, pending_alert


class OutboxMixin(PostgresBase):
    def due_alerts(self, now: datetime, limit: int = 100, *, channel: str | None = None) -> list[PendingAlert]:
        """Pending and held alerts whose time has come (of one channel) and nobody holds, oldest first."""
        moment = to_db_time(now)
        rows = self._read(
            f"""{PENDING_ALERT_SELECT}
            WHERE alerts.status IN ('pending', 'held') AND alerts.next_attempt_at <= %s
              AND (alerts.claimed_until IS NULL OR alerts.claimed_until <= %s)
              AND (%s::text IS NULL OR alerts.channel = %s)
            ORDER BY alerts.next_attempt_at, alerts.id
            LIMIT %s
            """,
            [moment, moment, channel, channel, limit],
        )
        outlets = self.story_outlet_links([row[12] for row in rows])
        return [pending_alert(row, outlets, TIMES) for row in rows]

    def due_channels(self, now: datetime) -> list[str]:
        """The channels with alerts due at ``now`` that nobody holds."""
        moment = to_db_time(now)
        rows = self._read(
            "SELECT DISTINCT channel FROM alerts WHERE status IN ('pending', 'held') AND next_attempt_at <= %s"
            " AND (claimed_until IS NULL OR claimed_until <= %s) ORDER BY channel",
            [moment, moment],
        )
        return [row[0] for row in rows]

    def claim_alerts(self, alert_ids: Sequence[int], owner: str, now: datetime, until: datetime) -> list[int]:
        """Claim for ``owner`` until ``until`` those alerts still due and free (or ``owner``'s); the ids claimed."""
        if not alert_ids:
            return []
        moment = to_db_time(now)
        with self._atomic():
            rows = self._execute(
                "UPDATE alerts SET claimed_by = %s, claimed_until = %s WHERE id = ANY(%s)"
                " AND status IN ('pending', 'held') AND next_attempt_at <= %s"
                " AND (claimed_until IS NULL OR claimed_until <= %s OR claimed_by = %s) RETURNING id",
                [owner, to_db_time(until), sorted(set(alert_ids)), moment, moment, owner],
            ).fetchall()
        return sorted(row[0] for row in rows)

    def release_claims(self, owner: str) -> int:
        """End every claim ``owner`` holds; the rows stay as they are, due again for anyone."""
        with self._atomic():
            return self._execute(
                "UPDATE alerts SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = %s", [owner]
            ).rowcount

    def story_outlets(self, story_ids: Sequence[int]) -> dict[int, list[str]]:
        """The feeds that ran each story, in the order they ran it."""
        return {story: [feed for feed, _ in runs] for story, runs in self.story_outlet_links(story_ids).items()}

    def story_outlet_links(self, story_ids: Sequence[int]) -> dict[int, list[tuple[str, str | None]]]:
        """The feeds that ran each story, in the order they ran it, each with the link of its first item of it."""
        found: dict[int, dict[str, str | None]] = {}
        stories = sorted(set(story_ids))
        if not stories:
            return {}
        for story_id, feed, link in self._read(
            "SELECT COALESCE(items.story_id, items.id) AS story, feeds.name, items.link FROM items"
            " JOIN feeds ON feeds.id = items.feed_id"
            " WHERE items.id = ANY(%s) OR items.story_id = ANY(%s)"
            " ORDER BY items.first_seen_at, items.id",
            [stories, stories],
        ):
            found.setdefault(story_id, {}).setdefault(feed, link)
        return {story: list(runs.items()) for story, runs in found.items()}

    def mark_held(self, alert_id: int, reason: str | None, release_at: datetime) -> None:
        """Hold an alert for a digest until ``release_at``."""
        with self._atomic():
            self._execute(
                "UPDATE alerts SET status = 'held', digest = TRUE, reason = %s, next_attempt_at = %s, due_since = %s,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = %s",
                [reason, to_db_time(release_at), to_db_time(release_at), alert_id],
            )

    def mark_sent(self, alert_id: int, now: datetime) -> None:
        with self._atomic():
            self._execute(
                "UPDATE alerts SET status = 'sent', sent_at = %s, attempts = attempts + 1,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = %s",
                [to_db_time(now), alert_id],
            )

    def mark_failed(self, alert_id: int, reason: str, next_attempt_at: datetime | None) -> None:
        """Record a failed send; ``next_attempt_at=None`` gives up (status dead)."""
        with self._atomic():
            if next_attempt_at is None:
                self._execute(
                    "UPDATE alerts SET status = 'dead', attempts = attempts + 1, last_error = %s,"
                    " claimed_by = NULL, claimed_until = NULL WHERE id = %s",
                    [reason, alert_id],
                )
            else:
                self._execute(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = %s, next_attempt_at = %s,"
                    " claimed_by = NULL, claimed_until = NULL WHERE id = %s",
                    [reason, to_db_time(next_attempt_at), alert_id],
                )

    def retry_alerts(self, now: datetime, *, ids: Sequence[int] = (), dead: bool = False) -> int:
        """Make alerts due again now (by id, or every dead one); how many. NotFoundError for an unknown id."""
        with self.transaction():
            if ids:
                known = {row[0] for row in self._execute("SELECT id FROM alerts WHERE id = ANY(%s)", [list(ids)])}
                missing = [str(alert_id) for alert_id in ids if alert_id not in known]
                if missing:
                    raise NotFoundError(f"no alert with id {', '.join(missing)}")
            changed = 0
            if ids:
                changed += self._execute(
                    "UPDATE alerts SET status = 'pending', next_attempt_at = %s WHERE id = ANY(%s)"
                    " AND status != 'pending'",
                    [to_db_time(now), list(ids)],
                ).rowcount
            if dead:
                changed += self._execute(
                    "UPDATE alerts SET status = 'pending', next_attempt_at = %s WHERE status = 'dead'",
                    [to_db_time(now)],
                ).rowcount
        return changed

    def alert(self, alert_id: int) -> AlertRecord:
        found = self._alert_records("alerts.id = %s", [alert_id])
        if not found:
            raise NotFoundError(f"no alert with id {alert_id}")
        return found[0]

    def list_alerts(
        self, *, status: AlertStatus | None = None, rule: str | None = None, limit: int = 50
    ) -> list[AlertRecord]:
        """The newest outbox rows, with the title and feed of their item."""
        state = None if status is None else str(status)
        return self._alert_records(
            "(%s::text IS NULL OR alerts.status = %s) AND (%s::text IS NULL OR alerts.rule = %s)"
            " ORDER BY alerts.id DESC LIMIT %s",
            [state, state, rule, rule, limit],
        )

    def _alert_records(self, where: str, params: Sequence[Any]) -> list[AlertRecord]:
        rows = self._read(f"{ALERT_SELECT} WHERE {where}", params)
        outlets = self.story_outlets([row[6] for row in rows])
        return [alert_record(row, outlets, TIMES) for row in rows]

    def alert_counts(self) -> dict[AlertStatus, int]:
        rows = self._read("SELECT status, count(*) FROM alerts GROUP BY status ORDER BY status")
        return {AlertStatus(status): count for status, count in rows}
