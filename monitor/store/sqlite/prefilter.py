"""Items that may hold some words, found through the full-text index (FTS5): the rule tester's prefilter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.store.records import StoredItem, WordCandidate
from monitor.store.sqlite.items import ItemsMixin
from monitor.store.sqlite.schema import chunks, db_time, placeholders, to_db_time


def _beyond_ascii(column: str) -> str:
    """SQL true when ``column`` holds a character beyond ASCII (its UTF-8 bytes outnumber its characters)."""
    return f"length(CAST({column} AS BLOB)) <> length({column})"


class PrefilterMixin(ItemsMixin):
    def word_candidates(self, clauses: Sequence[Sequence[str]], since: datetime) -> list[WordCandidate]:
        """Every item first seen at or after ``since``, by id (see :meth:`monitor.store.Storage.word_candidates`)."""
        match = " OR ".join("(" + " AND ".join(f'"{word}"' for word in clause) + ")" for clause in clauses)
        beyond = f"({_beyond_ascii('items.title')} OR {_beyond_ascii('items.text')})"
        rows = self._read(
            "SELECT items.id, items.first_seen_at, hits.rowid IS NOT NULL,"
            f" CASE WHEN hits.rowid IS NULL AND {beyond} THEN items.title END,"
            f" CASE WHEN hits.rowid IS NULL AND {beyond} THEN items.text END"
            " FROM items INDEXED BY items_first_seen"
            " LEFT JOIN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?) AS hits ON hits.rowid = items.id"
            " WHERE items.first_seen_at >= ?",
            [match, to_db_time(since)],
        )
        found = [WordCandidate(row[0], db_time(row[1]), bool(row[2]), row[3], row[4]) for row in rows]
        found.sort(key=lambda candidate: candidate.id)
        return found

    def items_by_ids(self, item_ids: Sequence[int]) -> list[StoredItem]:
        """The stored items with these ids (those still stored), in the order they were stored."""
        found: list[StoredItem] = []
        for chunk in chunks(sorted(set(item_ids))):
            found += self._stored_items(f"items.id IN ({placeholders(chunk)})", chunk)
        found.sort(key=lambda stored: stored.id)
        return found
