"""Items that may hold some words, found through the full-text index (tsvector): the rule tester's prefilter."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.store.postgres.fulltext import Phrase
from monitor.store.postgres.items import ItemsMixin
from monitor.store.postgres.schema import db_time, to_db_time
from monitor.store.records import StoredItem, WordCandidate


def _beyond_ascii(column: str) -> str:
    """SQL true when ``column`` holds a character beyond ASCII (its UTF-8 bytes outnumber its characters)."""
    return f"octet_length({column}) <> char_length({column})"


class PrefilterMixin(ItemsMixin):
    def word_candidates(self, clauses: Sequence[Sequence[str]], since: datetime) -> list[WordCandidate]:
        """Every item first seen at or after ``since``, by id (see :meth:`monitor.store.Storage.word_candidates`)."""
        query = " | ".join(
            "(" + " & ".join(Phrase(((word, False),)).tsquery() for word in clause) + ")" for clause in clauses
        )
        beyond = f"({_beyond_ascii('items.title')} OR {_beyond_ascii('items.text')})"
        rows = self._read(
            "SELECT id, first_seen_at, hit, CASE WHEN NOT hit AND beyond THEN title END,"
            " CASE WHEN NOT hit AND beyond THEN text END"
            f" FROM (SELECT items.id, items.first_seen_at, items.title, items.text, {beyond} AS beyond,"
            "  items.search @@ %s::tsquery AS hit FROM items WHERE items.first_seen_at >= %s) AS period"
            " ORDER BY id",
            [query, to_db_time(since)],
        )
        return [WordCandidate(int(row[0]), db_time(row[1]), bool(row[2]), row[3], row[4]) for row in rows]

    def items_by_ids(self, item_ids: Sequence[int]) -> list[StoredItem]:
        """The stored items with these ids (those still stored), in the order they were stored."""
        if not item_ids:
            return []
        return self._stored_items("items.id = ANY(%s) ORDER BY items.id", [sorted(set(item_ids))])
