"""Full-text search of stored items (FTS5), best matches first, with highlights."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from monitor.errors import StorageError
from monitor.store.records import HIGHLIGHT_END, HIGHLIGHT_START, SearchHit
from monitor.store.sqlite.schema import SqliteBase, db_time, from_db_time, to_db_time


class SearchMixin(SqliteBase):
    def search(self, query: str, *, since: datetime | None = None, limit: int = 20) -> list[SearchHit]:
        """Items matching a full-text query, best first, with a highlighted snippet.

        ``query`` is FTS5 syntax (words, "phrases", prefix*, AND/OR/NOT); text
        that is not valid FTS5 is searched as plain words instead. Titles
        weigh five times the body in the ranking.
        """
        try:
            return self._search(query, since, limit)
        except sqlite3.OperationalError:
            words = [word for word in query.replace('"', " ").split() if word]
            if not words:
                return []
            try:
                return self._search(" ".join(f'"{word}"' for word in words), since, limit)
            except sqlite3.Error as exc:
                raise StorageError(f"database {self.where}: {exc}") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.where}: {exc}") from exc

    def _search(self, match: str, since: datetime | None, limit: int) -> list[SearchHit]:
        rows = self.db.execute(
            f"""
            SELECT items.id, feeds.name, items.title, items.link, items.published_at, items.first_seen_at,
                   snippet(items_fts, 1, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}', '…', 24) AS snippet,
                   highlight(items_fts, 0, '{HIGHLIGHT_START}', '{HIGHLIGHT_END}') AS title_marked
            FROM items_fts
            JOIN items ON items.id = items_fts.rowid
            JOIN feeds ON feeds.id = items.feed_id
            WHERE items_fts MATCH ? AND (? IS NULL OR items.first_seen_at >= ?)
            ORDER BY bm25(items_fts, 5.0, 1.0)
            LIMIT ?
            """,
            [match, to_db_time(since), to_db_time(since), limit],
        ).fetchall()
        return [
            SearchHit(
                item_id=row[0],
                feed=row[1],
                title=row[2],
                link=row[3],
                published_at=from_db_time(row[4]),
                first_seen_at=db_time(row[5]),
                snippet=row[6],
                title_marked=row[7],
            )
            for row in rows
        ]
