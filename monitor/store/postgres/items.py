"""Items and stories: the snapshot a decision reads, the one write path for its intent, history.

The same as the SQLite store's, statement for statement; :meth:`ItemsMixin.write` also writes each
item's full-text vector (``items.search``, see :mod:`monitor.store.postgres.fulltext`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.errors import NotFoundError
from monitor.items import Mention
from monitor.store.postgres.fulltext import document_vector
from monitor.store.postgres.schema import TIMES, PostgresBase, db_time, from_db_time, to_db_time
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

CANDIDATES_PER_KEY = 20  # earlier items per story look-up key a new item is compared with

# Statuses that count against max_per_hour, and those that make a story "already alerted".
_INSTANT = [str(status) for status in (AlertStatus.PENDING, AlertStatus.SENT, AlertStatus.DEAD)]
_ALERTED = [str(status) for status in (AlertStatus.PENDING, AlertStatus.HELD, AlertStatus.SENT)]


class ItemsMixin(PostgresBase):
    # --- what a decision reads ----------------------------------------------------

    def known_items(self, feed_id: int, keys: Sequence[str]) -> dict[str, KnownItem]:
        """The stored items of a feed among ``keys``, by key."""
        if not keys:
            return {}
        rows = self._read(
            "SELECT key, id, content_hash, COALESCE(story_id, id), enriched FROM items"
            " WHERE feed_id = %s AND key = ANY(%s)",
            [feed_id, list(keys)],
        )
        return {key: KnownItem(item_id, content_hash, story_id, bool(enriched))
                for key, item_id, content_hash, story_id, enriched in rows}  # fmt: skip

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
        if known:
            alerted.update(
                (row[0], row[1], row[2])
                for row in self._read(
                    "SELECT item_id, rule, channel FROM alerts WHERE item_id = ANY(%s)",
                    [[k.id for k in known.values()]],
                )
            )
        return Snapshot(known, candidates, self._alert_history(sorted(set(pairs)), stories, now), frozenset(alerted))

    def _story_candidates(self, keys: list[str], since: datetime) -> dict[str, tuple[StoryCandidate, ...]]:
        # Bounded per key, the newest items of each key (see the SQLite store).
        if not keys:
            return {}
        by_key: dict[str, list[int]] = {}
        for key, item_id in self._read(
            "SELECT k.key, s.item_id FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
            "  SELECT item_id FROM story_keys WHERE story_keys.key = k.key AND seen_at >= %s"
            f"  ORDER BY seen_at DESC, item_id DESC LIMIT {CANDIDATES_PER_KEY}) AS s",
            [keys, to_db_time(since)],
        ):
            by_key.setdefault(key, []).append(item_id)
        ids = sorted({item_id for found in by_key.values() for item_id in found})
        rows: dict[int, StoryCandidate] = {}
        for item_id, story_id, link_key, fingerprint, seen_at in self._read(
            "SELECT id, COALESCE(story_id, id), link_key, fingerprint, first_seen_at FROM items WHERE id = ANY(%s)",
            [ids],
        ):
            rows[item_id] = StoryCandidate(story_id, item_id, link_key, _bytes(fingerprint), db_time(seen_at))
        return {key: tuple(rows[i] for i in sorted(found) if i in rows) for key, found in by_key.items()}

    def _alert_history(self, pairs: list[RuleChannel], stories: set[int], now: datetime) -> AlertHistory:
        instant: dict[RuleChannel, tuple[datetime, ...]] = {}
        last: dict[tuple[str, str, int], datetime] = {}
        hour_ago = to_db_time(now - timedelta(hours=1))
        story_list = sorted(stories)
        for rule, channel in pairs:
            rows = self._read(
                "SELECT created_at FROM alerts WHERE rule = %s AND channel = %s AND NOT digest"
                " AND status = ANY(%s) AND created_at > %s ORDER BY created_at",
                [rule, channel, _INSTANT, hour_ago],
            )
            instant[(rule, channel)] = tuple(db_time(row[0]) for row in rows)
            if not story_list:
                continue
            for story_id, when in self._read(
                "SELECT story_id, max(COALESCE(sent_at, created_at)) FROM alerts WHERE rule = %s AND channel = %s"
                " AND status = ANY(%s) AND story_id = ANY(%s) GROUP BY story_id",
                [rule, channel, _ALERTED, story_list],
            ):
                last[(rule, channel, story_id)] = db_time(when)
        return AlertHistory(instant, last)

    # --- the one write path ---------------------------------------------------------

    def write(self, intent: Intent) -> list[int]:
        """Write a decided intent in one transaction; the ids of its items, in order."""
        now = to_db_time(intent.now)
        ids: list[int] = []
        stories: list[int] = []  # the story of each item of the batch, once placed
        # Pipelined: the batch's stored items are looked up and its new ids drawn in one query each, and
        # every other statement goes out without waiting for the server's answer.
        with self._pipeline(), self.transaction():
            if intent.feed is not None:
                self._write_feed(intent.feed)
            known = self._batch_items(intent.items)
            for write in intent.items:
                item_id, placing = self._upsert_item(write, now, known)
                ids.append(item_id)
                stories.append(self._place(write, item_id, placing, stories, known))
                if write.enriched:
                    self._replace_entities(item_id, write.mentions)
                for match in write.matches:
                    self._execute(
                        "INSERT INTO matches (item_id, rule, explanation, matched_at) VALUES (%s, %s, %s, %s)"
                        " ON CONFLICT (item_id, rule) DO UPDATE SET explanation = excluded.explanation",
                        [item_id, match.rule, json.dumps(list(match.hits), ensure_ascii=False), now],
                    )
                for alert in write.alerts:
                    release = to_db_time(alert.release_at) if alert.release_at else now
                    due_since = None if alert.status == AlertStatus.SUPPRESSED else release
                    self._execute(
                        "INSERT INTO alerts (rule, channel, item_id, story_id, status, reason, digest, created_at,"
                        " due_since, next_attempt_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (rule, channel, item_id) DO NOTHING",
                        [alert.rule, alert.channel, item_id, stories[-1], str(alert.status), alert.reason,
                         alert.status == AlertStatus.HELD, now, due_since, release],
                    )  # fmt: skip
            for surge in intent.surges:
                self._write_surge(surge, now)
        return ids

    def _write_surge(self, surge: SurgeWrite, now: datetime | None) -> None:
        state = surge.state
        self._execute(
            "INSERT INTO surges (rule, query, surging, checked_at, fired_at, count, usual, matching_since)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (rule) DO UPDATE SET query = excluded.query, surging = excluded.surging,"
            " checked_at = excluded.checked_at, fired_at = excluded.fired_at, count = excluded.count,"
            " usual = excluded.usual, matching_since = excluded.matching_since",
            [state.rule, state.query, bool(state.surging), to_db_time(state.checked_at), to_db_time(state.fired_at),
             state.count, state.usual, to_db_time(state.matching_since)],
        )  # fmt: skip
        for alert in surge.alerts:
            release = to_db_time(alert.release_at) if alert.release_at else now
            due_since = None if alert.status == AlertStatus.SUPPRESSED else release
            self._execute(
                "INSERT INTO alerts (rule, channel, item_id, story_id, status, reason, digest, created_at, due_since,"
                " next_attempt_at, kind, payload) VALUES (%s, %s, %s, 0, %s, %s, %s, %s, %s, %s, 'surge', %s)"
                " ON CONFLICT (rule, channel, item_id) DO NOTHING",
                [state.rule, alert.channel, alert.item_id, str(alert.status), alert.reason,
                 alert.status == AlertStatus.HELD, now, due_since, release,
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
                " WHERE matches.rule = %s AND items.first_seen_at > %s AND NOT items.backfill"
                " ORDER BY items.first_seen_at, items.id",
                [rule, to_db_time(since)],
            )
        ]

    def _write_feed(self, feed: FeedWrite) -> None:
        now = to_db_time(feed.polled_at)
        self._execute(
            "UPDATE feeds SET etag = %s, last_modified = %s, title = COALESCE(%s, title), first_fetch_done = TRUE,"
            " last_polled_at = %s, last_success_at = %s, error_count = 0, last_error = NULL, failing_since = NULL,"
            " next_poll_at = %s, next_poll_reason = %s, body_hash = %s, leased_by = NULL, leased_until = NULL"
            " WHERE id = %s",
            [feed.etag, feed.last_modified, feed.title, now, now, to_db_time(feed.next_poll_at),
             feed.next_poll_reason, feed.body_hash, feed.feed_id],
        )  # fmt: skip

    def _batch_items(self, writes: Sequence[ItemWrite]) -> _Known:
        """The stored items a batch names (by id, or by feed and key), and ids drawn for the new ones."""
        known = _Known()
        if not writes:
            return known
        for item_id, enriched, story_id, feed_id, key in self._execute(
            "SELECT id, enriched, COALESCE(story_id, id), feed_id, key FROM items WHERE id = ANY(%s)"
            " OR (feed_id, key) IN (SELECT * FROM unnest(%s::bigint[], %s::text[]))",
            [[w.item_id for w in writes if w.item_id is not None], [w.feed_id for w in writes],
             [w.item.key for w in writes]],
        ).fetchall():  # fmt: skip
            known.add(item_id, bool(enriched), story_id, feed_id, key)
        new = {(w.feed_id, w.item.key) for w in writes if known.find(w) is None}
        if new:
            known.fresh = [
                row[0]
                for row in self._execute(
                    "SELECT nextval(pg_get_serial_sequence('items', 'id')) FROM generate_series(1, %s)", [len(new)]
                ).fetchall()
            ]
        return known

    def _upsert_item(self, write: ItemWrite, now: datetime | None, known: _Known) -> tuple[int, bool]:
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
            "enriched": bool(write.enriched),
            "search": document_vector(item.title, item.text),
        }
        if write.story is not None:
            values |= {"link_key": write.story.link_key, "fingerprint": write.story.fingerprint}
        row = known.find(write)
        if row is not None:
            assignments = ", ".join(f"{column} = {_param(column)}" for column in values)
            self._execute(
                f"UPDATE items SET {assignments}, updated_at = %(now)s WHERE id = %(id)s",
                {**values, "now": now, "id": row.id},
            )
            placing = not row.enriched and write.enriched
            row.enriched = row.enriched or write.enriched
            return row.id, placing
        item_id = known.fresh.pop(0)
        values |= {"id": item_id, "feed_id": write.feed_id, "key": item.key, "backfill": bool(write.backfill)}
        columns = ", ".join(values)
        self._execute(
            f"INSERT INTO items ({columns}, first_seen_at, updated_at)"
            f" VALUES ({', '.join(_param(c) for c in values)}, %(now)s, %(now)s)",
            {**values, "now": now},
        )
        known.add(item_id, bool(write.enriched), item_id, write.feed_id, item.key)
        return item_id, write.enriched

    def _place(self, write: ItemWrite, item_id: int, placing: bool, stories: list[int], known: _Known) -> int:
        """Join the item to its story as decided and index its story keys; its story id."""
        if not placing:
            if not write.alerts:  # in its story already (or in none yet) and alerting nobody
                return item_id
            return known.by_id[item_id].story_id
        story_id = item_id
        if write.join is not None:
            story_id = write.join.story_id if write.join.story_id is not None else stories[write.join.batch_index or 0]
            self._execute("UPDATE items SET story_id = %s WHERE id = %s", [story_id, item_id])
            known.by_id[item_id].story_id = story_id
        if write.story is not None and write.story.keys:
            self._execute(
                "INSERT INTO story_keys (key, item_id, seen_at)"
                " SELECT k.key, items.id, items.first_seen_at FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n)"
                " JOIN items ON items.id = %s ORDER BY k.n",
                [list(write.story.keys), item_id],
            )
        return story_id

    def _replace_entities(self, item_id: int, mentions: Sequence[Mention]) -> None:
        self._execute("DELETE FROM entities WHERE item_id = %s", [item_id])
        if mentions:
            with self.conn.cursor() as cursor:
                cursor.executemany(
                    'INSERT INTO entities (item_id, text, canonical, type, field, start, "end")'
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [(item_id, m.text, m.canonical, m.type, m.field, m.start, m.end) for m in mentions],
                )

    # --- history --------------------------------------------------------------------

    def unenriched_items(self, limit: int = 64) -> list[StoredItem]:
        """Items stored without entities and matches yet, oldest first."""
        return self._stored_items("NOT items.enriched ORDER BY items.id LIMIT %s", [limit])

    def unenriched_count(self) -> int:
        return int(self._read("SELECT count(*) FROM items WHERE NOT enriched")[0][0])

    def iter_items(self, since: datetime | None = None, batch: int = 500, *, after_id: int = 0) -> Iterator[StoredItem]:
        """Stored items (first seen at or after ``since``, with ids above ``after_id``), in the order they were
        stored, with their entities."""
        last_id = after_id
        moment = to_db_time(since)
        while True:
            found = self._stored_items(
                "items.id > %s AND (%s::timestamptz IS NULL OR items.first_seen_at >= %s) ORDER BY items.id LIMIT %s",
                [last_id, moment, moment, batch],
            )
            if not found:
                return
            yield from found
            last_id = found[-1].id

    def join_order(self, item_ids: Sequence[int]) -> dict[int, int]:
        """For items placed in a story by their lookup keys: a number that orders them as they were placed."""
        if not item_ids:
            return {}
        rows = self._read(
            "SELECT item_id, min(id) FROM story_keys WHERE item_id = ANY(%s) GROUP BY item_id", [list(item_ids)]
        )
        return {int(item_id): int(order) for item_id, order in rows}

    def first_seen(self, since: datetime | None = None) -> datetime | None:
        """When the oldest item (first seen at or after ``since``) was stored."""
        moment = to_db_time(since)
        rows = self._read(
            "SELECT min(first_seen_at) FROM items WHERE %s::timestamptz IS NULL OR first_seen_at >= %s",
            [moment, moment],
        )
        return from_db_time(rows[0][0])

    def find_items(self, ref: str) -> list[StoredItem]:
        """Items by id, guid or link (a guid or link may name items of several feeds); see the SQLite store."""
        if not ref:
            return []
        ids: list[int] = []
        if ref.isascii() and ref.isdigit() and len(ref) <= 18:
            ids += [row[0] for row in self._read("SELECT id FROM items WHERE id = %s ORDER BY id", [int(ref)])]
        ids += [
            row[0] for row in self._read("SELECT id FROM items WHERE guid = %s OR link = %s ORDER BY id", [ref, ref])
        ]
        if not urlsplit(ref).scheme:
            suffixed = self._read(
                "SELECT id, guid FROM items WHERE right(guid, char_length(%s)) = %s AND guid != %s ORDER BY id",
                [ref] * 3,
            )
            ids += [item_id for item_id, guid in suffixed if urljoin(guid, ref) == guid]
        unique = list(dict.fromkeys(ids))
        if not unique:
            return []
        return self._stored_items("items.id = ANY(%s) ORDER BY items.id", [unique])

    def item(self, item_id: int) -> StoredItem:
        found = self._stored_items("items.id = %s", [item_id])
        if not found:
            raise NotFoundError(f"no stored item #{item_id}")
        return found[0]

    def _stored_items(self, where: str, params: Sequence[Any]) -> list[StoredItem]:
        rows = self._read(f"{STORED_ITEM_SELECT} WHERE {where}", params)
        mentions = self._mentions_of([row[0] for row in rows]) if rows else {}
        return [stored_item(row, mentions.get(row[0], ()), TIMES) for row in rows]

    def _mentions_of(self, item_ids: list[int]) -> dict[int, list[Mention]]:
        found: dict[int, list[Mention]] = {}
        for row in self._read(
            'SELECT item_id, text, canonical, type, field, start, "end" FROM entities'
            " WHERE item_id = ANY(%s) ORDER BY id",
            [item_ids],
        ):
            found.setdefault(row[0], []).append(Mention(*row[1:]))
        return found

    def apply_retention(
        self, now: datetime, *, items: timedelta | None, matches: timedelta | None, alerts: timedelta | None
    ) -> dict[str, int]:
        """Delete what is older than its retention; ``None`` keeps forever (see the SQLite store)."""
        deleted = {"alerts": 0, "matches": 0, "items": 0}
        with self.transaction():
            if alerts is not None:
                deleted["alerts"] = self._execute(
                    "DELETE FROM alerts WHERE status NOT IN ('pending', 'held') AND created_at < %s",
                    [to_db_time(now - alerts)],
                ).rowcount
            if matches is not None:
                deleted["matches"] = self._execute(
                    "DELETE FROM matches WHERE matched_at < %s"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = matches.item_id)",
                    [to_db_time(now - matches)],
                ).rowcount
            if items is not None:
                deleted["items"] = self._execute(
                    "DELETE FROM items WHERE first_seen_at < %s"
                    " AND NOT EXISTS (SELECT 1 FROM matches WHERE matches.item_id = items.id)"
                    " AND NOT EXISTS (SELECT 1 FROM alerts WHERE alerts.item_id = items.id)",
                    [to_db_time(now - items)],
                ).rowcount
        return deleted


@dataclass
class _Row:
    id: int
    enriched: bool
    story_id: int


@dataclass
class _Known:
    """A batch's stored items as it writes them: by id and by (feed, key); ids drawn for its new items."""

    by_id: dict[int, _Row] = field(default_factory=dict)
    by_key: dict[tuple[int, str], list[_Row]] = field(default_factory=dict)
    fresh: list[int] = field(default_factory=list)

    def add(self, item_id: int, enriched: bool, story_id: int, feed_id: int, key: str) -> None:
        row = _Row(item_id, enriched, story_id)
        self.by_id[item_id] = row
        self.by_key.setdefault((feed_id, key), []).append(row)

    def find(self, write: ItemWrite) -> _Row | None:
        """As ``WHERE id = ? OR (feed_id = ? AND key = ?)``, the lowest id first."""
        found = [*self.by_key.get((write.feed_id, write.item.key), ())]
        if write.item_id is not None and write.item_id in self.by_id:
            found.append(self.by_id[write.item_id])
        return min(found, key=lambda row: row.id) if found else None


def _param(column: str) -> str:
    """The named placeholder of a column's value (the search vector is a tsvector literal)."""
    return f"%({column})s::tsvector" if column == "search" else f"%({column})s"


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None
