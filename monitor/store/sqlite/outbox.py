"""The alert outbox: due rows for delivery, claims on them while they are sent, and what became of each send.

A claim is a lease on a row (``claimed_by``, ``claimed_until``): while it runs, the row is not
due for anyone else. Claiming is one UPDATE in an IMMEDIATE transaction that re-checks the row
is still due and free, so of two processes claiming at once exactly one gets each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from monitor.errors import NotFoundError
from monitor.store.records import AlertRecord, AlertStatus, PendingAlert
from monitor.store.rows import ALERT_SELECT, PENDING_ALERT_SELECT, alert_record, pending_alert
from monitor.store.sqlite.schema import TIMES, SqliteBase, chunks, placeholders, to_db_time


class OutboxMixin(SqliteBase):
    def due_alerts(self, now: datetime, limit: int = 100, *, channel: str | None = None) -> list[PendingAlert]:
        """Pending and held alerts whose time has come (of one channel) and nobody holds, oldest first."""
        moment = to_db_time(now)
        rows = self._read(
            f"""{PENDING_ALERT_SELECT}
            WHERE alerts.status IN ('pending', 'held') AND alerts.next_attempt_at <= ?
              AND (alerts.claimed_until IS NULL OR alerts.claimed_until <= ?)
              AND (? IS NULL OR alerts.channel = ?)
            ORDER BY alerts.next_attempt_at, alerts.id
            LIMIT ?
            """,
            [moment, moment, channel, channel, limit],
        )
        outlets = self.story_outlet_links([row[12] for row in rows])
        return [pending_alert(row, outlets, TIMES) for row in rows]

    def due_channels(self, now: datetime) -> list[str]:
        """The channels with alerts due at ``now`` that nobody holds."""
        moment = to_db_time(now)
        rows = self._read(
            "SELECT DISTINCT channel FROM alerts WHERE status IN ('pending', 'held') AND next_attempt_at <= ?"
            " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY channel",
            [moment, moment],
        )
        return [row[0] for row in rows]

    def claim_alerts(self, alert_ids: Sequence[int], owner: str, now: datetime, until: datetime) -> list[int]:
        """Claim for ``owner`` until ``until`` those alerts still due and free (or ``owner``'s); the ids claimed."""
        moment = to_db_time(now)
        claimed: list[int] = []
        with self.transaction():
            for chunk in chunks(sorted(set(alert_ids))):
                claimed += [
                    row[0]
                    for row in self.db.execute(
                        f"UPDATE alerts SET claimed_by = ?, claimed_until = ? WHERE id IN ({placeholders(chunk)})"
                        " AND status IN ('pending', 'held') AND next_attempt_at <= ?"
                        " AND (claimed_until IS NULL OR claimed_until <= ? OR claimed_by = ?) RETURNING id",
                        [owner, to_db_time(until), *chunk, moment, moment, owner],
                    ).fetchall()
                ]
        return sorted(claimed)

    def release_claims(self, owner: str) -> int:
        """End every claim ``owner`` holds; the rows stay as they are, due again for anyone."""
        with self.transaction():
            return self.db.execute(
                "UPDATE alerts SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = ?", [owner]
            ).rowcount

    def story_outlets(self, story_ids: Sequence[int]) -> dict[int, list[str]]:
        """The feeds that ran each story, in the order they ran it."""
        return {story: [feed for feed, _ in runs] for story, runs in self.story_outlet_links(story_ids).items()}

    def story_outlet_links(self, story_ids: Sequence[int]) -> dict[int, list[tuple[str, str | None]]]:
        """The feeds that ran each story, in the order they ran it, each with the link of its first item of it."""
        found: dict[int, dict[str, str | None]] = {}
        for chunk in chunks(sorted(set(story_ids))):
            marks = placeholders(chunk)
            for story_id, feed, link in self._read(
                f"SELECT COALESCE(items.story_id, items.id) AS story, feeds.name, items.link FROM items"
                f" JOIN feeds ON feeds.id = items.feed_id"
                f" WHERE items.id IN ({marks}) OR items.story_id IN ({marks})"
                f" ORDER BY items.first_seen_at, items.id",
                [*chunk, *chunk],
            ):
                found.setdefault(story_id, {}).setdefault(feed, link)
        return {story: list(runs.items()) for story, runs in found.items()}

    def mark_held(self, alert_id: int, reason: str | None, release_at: datetime) -> None:
        """Hold an alert for a digest until ``release_at``."""
        with self.transaction():
            self.db.execute(
                "UPDATE alerts SET status = 'held', digest = 1, reason = ?, next_attempt_at = ?, due_since = ?,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                [reason, to_db_time(release_at), to_db_time(release_at), alert_id],
            )

    def mark_sent(self, alert_id: int, now: datetime) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
                " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                [to_db_time(now), alert_id],
            )

    def mark_failed(self, alert_id: int, reason: str, next_attempt_at: datetime | None) -> None:
        """Record a failed send; ``next_attempt_at=None`` gives up (status dead)."""
        with self.transaction():
            if next_attempt_at is None:
                self.db.execute(
                    "UPDATE alerts SET status = 'dead', attempts = attempts + 1, last_error = ?,"
                    " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                    [reason, alert_id],
                )
            else:
                self.db.execute(
                    "UPDATE alerts SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
                    " claimed_by = NULL, claimed_until = NULL WHERE id = ?",
                    [reason, to_db_time(next_attempt_at), alert_id],
                )

    def retry_alerts(self, now: datetime, *, ids: Sequence[int] = (), dead: bool = False) -> int:
        """Make alerts due again now (by id, or every dead one); how many. NotFoundError for an unknown id."""
        with self.transaction():
            if ids:
                known = {
                    row[0]
                    for row in self.db.execute(f"SELECT id FROM alerts WHERE id IN ({placeholders(ids)})", list(ids))
                }
                missing = [str(alert_id) for alert_id in ids if alert_id not in known]
                if missing:
                    raise NotFoundError(f"no alert with id {', '.join(missing)}")
            changed = 0
            if ids:
                changed += self.db.execute(
                    f"UPDATE alerts SET status = 'pending', next_attempt_at = ? WHERE id IN ({placeholders(ids)})"
                    " AND status != 'pending'",
                    [to_db_time(now), *ids],
                ).rowcount
            if dead:
                changed += self.db.execute(
                    "UPDATE alerts SET status = 'pending', next_attempt_at = ? WHERE status = 'dead'",
                    [to_db_time(now)],
                ).rowcount
        return changed

    def alert(self, alert_id: int) -> AlertRecord:
        found = self._alert_records("alerts.id = ?", [alert_id])
        if not found:
            raise NotFoundError(f"no alert with id {alert_id}")
        return found[0]

    def list_alerts(
        self, *, status: AlertStatus | None = None, rule: str | None = None, limit: int = 50
    ) -> list[AlertRecord]:
        """The newest outbox rows, with the title and feed of their item."""
        state = None if status is None else str(status)
        return self._alert_records(
            "(? IS NULL OR alerts.status = ?) AND (? IS NULL OR alerts.rule = ?) ORDER BY alerts.id DESC LIMIT ?",
            [state, state, rule, rule, limit],
        )

    def _alert_records(self, where: str, params: Sequence[Any]) -> list[AlertRecord]:
        rows = self._read(f"{ALERT_SELECT} WHERE {where}", params)
        outlets = self.story_outlets([row[6] for row in rows])
        return [alert_record(row, outlets, TIMES) for row in rows]

    def alert_counts(self) -> dict[AlertStatus, int]:
        rows = self._read("SELECT status, count(*) FROM alerts GROUP BY status ORDER BY status")
        return {AlertStatus(status): count for status, count in rows}
