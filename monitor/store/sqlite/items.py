"""Items and stories: the snapshot a decision reads, the one write path for its intent, history.

:meth:`ItemsMixin.write` is the only place that stores items, entities,
matches, story joins and new outbox rows, for a poll and for an enrichment
alike. It decides nothing: every choice (which story, which alerts, in what
state) arrives made, in the :class:`Intent`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.errors import NotFoundError
from monitor.items import Mention
from monitor.store.records import (
    AlertHistory,
    AlertStatus,
    FeedWrite,
    Intent,
    ItemWrite,
    KnownItem,
    MatchedItem,
    RuleChannel,
    Snapshot,
    StoredItem,
    StoryCandidate,
    SurgeRecord,
    SurgeWrite,
)
from monitor.store.rows import STORED_ITEM_SELECT, SURGE_SELECT, matched_item, stored_item, surge_record
from monitor.store.sqlite.schema import TIMES, SqliteBase, chunks, db_time, from_db_time, placeholders, to_db_time

CANDIDATES_PER_KEY = 20  # earlier items per story look-up key a new item is compared with

# Statuses that count against max_per_hour, and those that make a story "already alerted".
_INSTANT = (AlertStatus.PENDING, AlertStatus.SENT, AlertStatus.DEAD)
_ALERTED = (AlertStatus.PENDING, AlertStatus.HELD, AlertStatus.SENT)


class ItemsMixin(SqliteBase):
    # --- what a decision reads ----------------------------------------------------

    def known_items(self, feed_id: int, keys: Sequence[str]) -> dict[str, KnownItem]:
        """The stored items of a feed among ``keys``, by key."""
        found: dict[str, KnownItem] = {}
        for chunk in chunks(list(keys)):
            for key, item_id, content_hash, story_id, enriched in self._read(
                f"SELECT key, id, content_hash, COALESCE(story_id, id), enriched FROM items"
                f" WHERE feed_id = ? AND key IN ({placeholders(chunk)})",
                [feed_id, *chunk],
            ):
                found[key] = KnownItem(item_id, content_hash, story_id, bool(enriched))
        return found

    def snapshot(
        self,
        *,
        feed_id: int | None,
        item_keys: Sequence[str],
        story_keys: Iterable[str],
        since: datetime,
        pairs: Iterable[RuleChannel],
        now: datetime,
    ) -> Snapshot:
        """What a decision about a batch needs: known items, story candidates, the outbox's pacing history."""
        known = self.known_items(feed_id, item_keys) if feed_id is not None else {}
        candidates = self._story_candidates(sorted(set(story_keys)), since)
        stories = {c.story_id for found in candidates.values() for c in found} | {k.story_id for k in known.values()}
        alerted: set[tuple[int, str, str]] = set()
        for chunk in chunks([k.id for k in known.values()]):
            alerted.update(
                self._read(f"SELECT item_id, rule, channel FROM alerts WHERE item_id IN ({placeholders(chunk)})", chunk)
            )
        return Snapshot(known, candidates, self._alert_history(sorted(set(pairs)), stories, now), frozenset(alerted))

    def _story_candidates(self, keys: list[str], since: datetime) -> dict[str, tuple[StoryCandidate, ...]]:
        # Bounded per key: real news gives a handful of candidates, but a key
        # shared by many near-identical boilerplate items must not make every
        # new item read them all. The newest items of each key are enough.
        by_key: dict[str, list[int]] = {}
        for chunk in chunks(keys, 100):
            per_key = " UNION ALL ".join(
                "SELECT * FROM (SELECT key, item_id FROM story_keys WHERE key = ? AND seen_at >= ?"
                f" ORDER BY seen_at DESC, item_id DESC LIMIT {CANDIDATES_PER_KEY})"
                for _ in chunk
            )
            params = [value for key in chunk for value in (key, to_db_time(since))]
            for key, item_id in self._read(per_key, params):
                by_key.setdefault(key, []).append(item_id)
        ids = sorted({item_id for found in by_key.values() for item_id in found})
        rows: dict[int, StoryCandidate] = {}
        for chunk in chunks(ids):
            for item_id, story_id, link_key, fingerprint, seen_at in self._read(
                "SELECT id, COALESCE(story_id, id), link_key, fingerprint, first_seen_at FROM items"
                f" WHERE id IN ({placeholders(chunk)})",
                chunk,
            ):
                rows[item_id] = StoryCandidate(story_id, item_id, link_key, fingerprint, db_time(seen_at))
        return {key: tuple(rows[i] for i in sorted(found) if i in rows) for key, found in by_key.items()}

    def _alert_history(self, pairs: list[RuleChannel], stories: set[int], now: datetime) -> AlertHistory:
        instant: dict[RuleChannel, tuple[datetime, ...]] = {}
        last: dict[tuple[str, str, int], datetime] = {}
        hour_ago = to_db_time(now - timedelta(hours=1))
        story_list = sorted(stories)
        for rule, channel in pairs:
            rows = self._read(
                "SELECT created_at FROM alerts WHERE rule = ? AND channel = ? AND digest = 0"
                f" AND status IN ({placeholders(_INSTANT)}) AND created_at > ? ORDER BY created_at",
                [rule, channel, *_INSTANT, hour_ago],
            )
            instant[(rule, channel)] = tuple(db_time(row[0]) for row in rows)
            for chunk in chunks(story_list):
                for story_id, when in self._read(
                    "SELECT story_id, max(COALESCE(sent_at, created_at)) FROM alerts WHERE rule = ? AND channel = ?"
                    f" AND status IN ({placeholders(_ALERTED)}) AND story_id IN ({placeholders(chunk)})"
                    " GROUP BY story_id",
                    [rule, channel, *_ALERTED, *chunk],
                ):
                    last[(rule, channel, story_id)] = db_time(when)
        return AlertHistory(instant, last)

    # --- the one write path ---------------------------------------------------------

    def write(self, intent: Intent) -> list[int]:
        """Write a decided intent in one transaction; the ids of its items, in order."""
        now = to_db_time(intent.now)
        ids: list[int] = []
        stories: list[int] = []  # the story of each item of the batch, once placed
        with self.transaction():
            if intent.feed is not None:
                self._write_feed(intent.feed)
            for write in intent.items:
                item_id, placing = self._upsert_item(write, now)
                ids.append(item_id)
                stories.append(self._place(write, item_id, placing, stories))
                if write.enriched:
                    self._replace_entities(item_id, write.mentions)
                for match in write.matches:
                    self.db.execute(
                        "INSERT INTO matches (item_id, rule, explanation, matched_at) VALUES (?, ?, ?, ?)"
                        " ON CONFLICT (item_id, rule) DO UPDATE SET explanation = excluded.explanation",
                        [item_id, match.rule, json.dumps(list(match.hits), ensure_ascii=False), now],
                    )
                for alert in write.alerts:
                    release = to_db_time(alert.release_at) if alert.release_at else now
                    due_since = None if alert.status == AlertStatus.SUPPRESSED else release
                    self.db.execute(
                        "INSERT INTO alerts (rule, channel, item_id, story_id, status, reason, digest, created_at,"
                        " due_since, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                        " ON CONFLICT (rule, channel, item_id) DO NOTHING",
                        [alert.rule, alert.channel, item_id, stories[-1], str(alert.status), alert.reason,
                         int(alert.status == AlertStatus.HELD), now, due_since, release],
                    )  # fmt: skip
            for surge in intent.surges:
                self._write_surge(surge, now)
        return ids

    def _write_surge(self, surge: SurgeWrite, now: str | None) -> None:
        state = surge.state
        self.db.execute(
            "INSERT INTO surges (rule, query, surging, checked_at, fired_at, count, usual, matching_since)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (rule) DO UPDATE SET query = excluded.query, surging = excluded.surging,"
            " checked_at = excluded.checked_at, fired_at = excluded.fired_at, count = excluded.count,"
            " usual = excluded.usual, matching_since = excluded.matching_since",
            [state.rule, state.query, int(state.surging), to_db_time(state.checked_at), to_db_time(state.fired_at),
             state.count, state.usual, to_db_time(state.matching_since)],
        )  # fmt: skip
        for alert in surge.alerts:
            release = to_db_time(alert.release_at) if alert.release_at else now
            due_since = None if alert.status == AlertStatus.SUPPRESSED else release
            self.db.execute(
                "INSERT INTO alerts (rule, channel, item_id, story_id, status, reason, digest, created_at, due_since,"
                " next_attempt_at, kind, payload) VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, 'surge', ?)"
                " ON CONFLICT (rule, channel, item_id) DO NOTHING",
                [state.rule, alert.channel, alert.item_id, str(alert.status), alert.reason,
                 int(alert.status == AlertStatus.HELD), now, due_since, release,
                 json.dumps(alert.payload, ensure_ascii=False)],
            )  # fmt: skip

    def surge_states(self) -> dict[str, SurgeRecord]:
        """Every spike rule's remembered state, by rule name."""
        return {row[0]: surge_record(row, TIMES) for row in self._read(SURGE_SELECT)}

    def rule_matches(self, rule: str, since: datetime) -> list[MatchedItem]:
        """Items first seen after ``since`` that ``rule`` matched (first fetches left out), oldest first."""
        return [
            matched_item(row, TIMES)
            for row in self._read(
                "SELECT items.id, COALESCE(items.story_id, items.id), items.first_seen_at, feeds.name, items.title,"
                " items.link FROM matches JOIN items ON items.id = matches.item_id"
                " JOIN feeds ON feeds.id = items.feed_id"
                " WHERE matches.rule = ? AND items.first_seen_at > ? AND items.backfill = 0"
                " ORDER BY items.first_seen_at, items.id",
                [rule, to_db_time(since)],
            )
        ]

    def _write_feed(self, feed: FeedWrite) -> None:
        now = to_db_time(feed.polled_at)
        self.db.execute(
            "UPDATE feeds SET etag = ?, last_modified = ?, title = COALESCE(?, title), first_fetch_done = 1,"
            " last_polled_at = ?, last_success_at = ?, error_count = 0, last_error = NULL, failing_since = NULL,"
            " next_poll_at = ?, next_poll_reason = ?, body_hash = ?, leased_by = NULL, leased_until = NULL"
            " WHERE id = ?",
            [feed.etag, feed.last_modified, feed.title, now, now, to_db_time(feed.next_poll_at),
             feed.next_poll_reason, feed.body_hash, feed.feed_id],
        )  # fmt: skip

    def _upsert_item(self, write: ItemWrite, now: str | None) -> tuple[int, bool]:
        """The item's id, and whether it is to be placed in a story now (new, or enriched now)."""
        item = write.item
        values: dict[str, Any] = {
            "guid": item.guid,
            "link": item.link,
            "title": item.title,
            "text": item.text,
            "author": item.author,
            "tags": json.dumps(list(item.tags), ensure_ascii=False),
            "published_at": to_db_time(item.published_at),
            "content_hash": item.content_hash,
            "enriched": int(write.enriched),
        }
        if write.story is not None:
            values |= {"link_key": write.story.link_key, "fingerprint": write.story.fingerprint}
        row = self.db.execute(
            "SELECT id, enriched FROM items WHERE id = ? OR (feed_id = ? AND key = ?)",
            [write.item_id, write.feed_id, item.key],
        ).fetchone()
        if row is not None:
            assignments = ", ".join(f"{column} = :{column}" for column in values)
            self.db.execute(
                f"UPDATE items SET {assignments}, updated_at = :now WHERE id = :id",
                {**values, "now": now, "id": row[0]},
            )
            return int(row[0]), not row[1] and write.enriched
        values |= {"feed_id": write.feed_id, "key": item.key, "backfill": int(write.backfill)}
        columns = ", ".join(values)
        cursor = self.db.execute(
            f"INSERT INTO items ({columns}, first_seen_at, updated_at)"
            f" VALUES ({', '.join(':' + c for c in values)}, :now, :now)",
            {**values, "now": now},
        )
        return int(cursor.lastrowid), write.enriched

    def _place(self, write: ItemWrite, item_id: int, placing: bool, stories: list[int]) -> int:
        """Join the item to its story as decided and index its story keys; its story id."""
        if not placing:
            if not write.alerts:  # in its story already (or in none yet) and alerting nobody
                return item_id
            (story_id,) = self.db.execute("SELECT COALESCE(story_id, id) FROM items WHERE id = ?", [item_id]).fetchone()
            return int(story_id)
        story_id = item_id
        if write.join is not None:
            story_id = write.join.story_id if write.join.story_id is not None else stories[write.join.batch_index or 0]
            self.db.execute("UPDATE items SET story_id = ? WHERE id = ?", [story_id, item_id])
        if write.story is not None and write.story.keys:
            (seen_at,) = self.db.execute("SELECT first_seen_at FROM items WHERE id = ?", [item_id]).fetchone()
            self.db.conn.executemany(
                "INSERT INTO story_keys (key, item_id, seen_at) VALUES (?, ?, ?)",
                [(key, item_id, seen_at) for key in write.story.keys],
            )
        return story_id

    def _replace_entities(self, item_id: int, mentions: Sequence[Mention]) -> None:
        self.db.execute("DELETE FROM entities WHERE item_id = ?", [item_id])
        self.db.conn.executemany(
            'INSERT INTO entities (item_id, text, canonical, type, field, start, "end") VALUES (?, ?, ?, ?, ?, ?, ?)',
            [(item_id, m.text, m.canonical, m.type, m.field, m.start, m.end) for m in mentions],
        )

    # --- history --------------------------------------------------------------------

    def unenriched_items(self, limit: int = 64) -> list[StoredItem]:
        """Items stored without entities and matches yet, oldest first."""
        return self._stored_items("items.enriched = 0 ORDER BY items.id LIMIT ?", [limit])

    def unenriched_count(self) -> int:
        return int(self._read("SELECT count(*) FROM items WHERE enriched = 0")[0][0])

    def iter_items(self, since: datetime | None = None, batch: int = 500, *, after_id: int = 0) -> Iterator[StoredItem]:
        """Stored items (first seen at or after ``since``, with ids above ``after_id``), in the order they were
        stored, with their entities."""
        last_id = after_id
        while True:
            found = self._stored_items(
                "items.id > ? AND (? IS NULL OR items.first_seen_at >= ?) ORDER BY items.id LIMIT ?",
                [last_id, to_db_time(since), to_db_time(since), batch],
            )
            if not found:
                return
            yield from found
            last_id = found[-1].id

    def join_order(self, item_ids: Sequence[int]) -> dict[int, int]:
        """For items placed in a story by their lookup keys: a number that orders them as they were placed."""
        order: dict[int, int] = {}
        for chunk in chunks(list(item_ids)):
            order.update(
                self._read(
                    f"SELECT item_id, min(rowid) FROM story_keys WHERE item_id IN ({placeholders(chunk)})"
                    " GROUP BY item_id",
                    chunk,
                )
            )
        return order

    def first_seen(self, since: datetime | None = None) -> datetime | None:
        """When the oldest item (first seen at or after ``since``) was stored."""
        rows = self._read(
            "SELECT min(first_seen_at) FROM items WHERE ? IS NULL OR first_seen_at >= ?",
            [to_db_time(since), to_db_time(since)],
        )
        return from_db_time(rows[0][0])

    def find_items(self, ref: str) -> list[StoredItem]:
        """Items by id, guid or link (a guid or link may name items of several feeds).

        A guid is found as the feed wrote it too: a relative one (``123``,
        ``/a/1``) is stored resolved against the feed's URL, and names each
        stored guid that it resolves to from that guid's own place.
        """
        if not ref:
            return []
        ids: list[int] = []
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ids += [row[0] for row in self._read("SELECT id FROM items WHERE id = ?", [int(ref)])]
        ids += [row[0] for row in self._read("SELECT id FROM items WHERE guid = ? OR link = ?", [ref, ref])]
        if not urlsplit(ref).scheme:
            suffixed = self._read(
                "SELECT id, guid FROM items WHERE substr(guid, -length(?)) = ? AND guid != ?", [ref] * 3
            )
            ids += [item_id for item_id, guid in suffixed if urljoin(guid, ref) == guid]
        unique = list(dict.fromkeys(ids))
        return [
            stored
            for chunk in chunks(unique)
            for stored in self._stored_items(f"items.id IN ({placeholders(chunk)}) ORDER BY items.id", chunk)
        ]

    def item(self, item_id: int) -> StoredItem:
        found = self._stored_items("items.id = ?", [item_id])
        if not found:
            raise NotFoundError(f"no stored item #{item_id}")
        return found[0]

    def _stored_items(self, where: str, params: Sequence[Any]) -> list[StoredItem]:
        rows = self._read(f"{STORED_ITEM_SELECT} WHERE {where}", params)
        mentions = self._mentions_of([row[0] for row in rows]) if rows else {}
        return [stored_item(row, mentions.get(row[0], ()), TIMES) for row in rows]

    def _mentions_of(self, item_ids: list[int]) -> dict[int, list[Mention]]:
        found: dict[int, list[Mention]] = {}
        for chunk in chunks(item_ids):
            for row in self._read(
                f'SELECT item_id, text, canonical, type, field, start, "end" FROM entities'
                f" WHERE item_id IN ({placeholders(chunk)}) ORDER BY id",
                chunk,
            ):
                found.setdefault(row[0], []).append(Mention(*row[1:]))
        return found

    def apply_retention(
        self, now: datetime, *, items: timedelta | None, matches: timedelta | None, alerts: timedelta | None
    ) -> dict[str, int]:
        """Delete what is older than its retention; ``None`` keeps forever.

        Pending and held alerts are never deleted, and an item stays while a
        match or an alert still refers to it, so matches and alerts can outlive
        the plain items. The full-text index follows through its triggers.
        """
        deleted = {"alerts": 0, "matches": 0, "items": 0}
        with self.transaction():
            if alerts is not None:
                deleted["alerts"] = self.db.execute(
                    "DELETE FROM alerts WHERE status NOT IN ('pending', 'held') AND created_at < ?",
                    [to_db_time(now - alerts)],
                ).rowcount
            if matches is not None:
                deleted["matches"] = self.db.execute(
                    "DELETE FROM matches WHERE matched_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = matches.item_id)",
                    [to_db_time(now - matches)],
                ).rowcount
            if items is not None:
                deleted["items"] = self.db.execute(
                    "DELETE FROM items WHERE first_seen_at < ?"
                    " AND NOT EXISTS (SELECT 1 FROM matches WHERE matches.item_id = items.id)"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = items.id)",
                    [to_db_time(now - items)],
                ).rowcount
        if deleted["items"]:
            with self.transaction():
                self.db.execute("INSERT INTO items_fts(items_fts) VALUES ('optimize')")
        return deleted
