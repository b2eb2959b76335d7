"""Full-text search of stored items (tsvector + GIN), best matches first, with highlights.

The query takes FTS5 syntax, as on SQLite, and finds the same items (see
:mod:`monitor.store.postgres.fulltext`); text that is not valid syntax is searched as plain
words. Titles weigh five times the body in the ranking (weights A and B).
"""

from __future__ import annotations

from datetime import datetime

from monitor.store.postgres import fulltext
from monitor.store.postgres.schema import PostgresBase, db_time, from_db_time, to_db_time
from monitor.store.records import SearchHit

# ts_rank's weights, in the order {D, C, B, A}: text (B) counts a fifth of the title (A).
_RANK_WEIGHTS = "{0, 0, 0.2, 1.0}"


class SearchMixin(PostgresBase):
    def search(self, query: str, *, since: datetime | None = None, limit: int = 20) -> list[SearchHit]:
        """Items matching a full-text query, best first, with a highlighted snippet."""
        try:
            parsed = fulltext.parse(query)
        except fulltext.QuerySyntaxError:
            parsed = fulltext.plain_words(query)
        tsquery = fulltext.to_tsquery(parsed)
        if tsquery is None:
            return []
        moment = to_db_time(since)
        rows = self._read(
            "SELECT items.id, feeds.name, items.title, items.link, items.published_at, items.first_seen_at,"
            " items.text"
            " FROM items JOIN feeds ON feeds.id = items.feed_id"
            " WHERE items.search @@ %s::tsquery AND (%s::timestamptz IS NULL OR items.first_seen_at >= %s)"
            " ORDER BY ts_rank(%s::real[], items.search, %s::tsquery, 1) DESC, items.id"
            " LIMIT %s",
            [tsquery, moment, moment, _RANK_WEIGHTS, tsquery, limit],
        )
        found = fulltext.phrases(parsed)
        return [
            SearchHit(
                item_id=row[0],
                feed=row[1],
                title=row[2],
                link=row[3],
                published_at=from_db_time(row[4]),
                first_seen_at=db_time(row[5]),
                snippet=fulltext.snippet(row[6], found, fulltext.TEXT),
                title_marked=fulltext.highlight(row[2], found, fulltext.TITLE),
            )
            for row in rows
        ]
