"""The PostgreSQL store's reading of FTS5 queries and its highlights, against SQLite's FTS5 itself."""

from __future__ import annotations

import random
import sqlite3

import pytest

from monitor.store.postgres import fulltext

WORDS = (
    "ceasefire talks resume doha markets café naïve Straße envoy al-Assad oil rate xi putin the a. b: c, (d)".split()
)


def fts5(rows: list[tuple[str, str]]) -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(title, text, tokenize='unicode61 remove_diacritics 2')")
    conn.executemany(
        "INSERT INTO t (rowid, title, text) VALUES (?, ?, ?)", [(n, *row) for n, row in enumerate(rows, 1)]
    )
    return conn


@pytest.mark.parametrize(
    ("query", "tsquery"),
    [
        ("ceasefire", "'ceasefire'"),
        ('"Cease-fire talks"*', "('cease' <-> 'fire' <-> 'talks':*)"),
        ("title:doha OR text:oil", "('doha':A | 'oil':B)"),
        ("a b OR c", "(('a' & 'b') | 'c')"),  # implicit AND binds before OR
        ("a NOT b c", "('a' & ! ('b' & 'c'))"),  # ...and before NOT
        ("a AND b NOT c", "('a' & ('b' & ! 'c'))"),  # NOT before AND
        ("^naïve", "('^' <-> 'naive')"),
        ('one ""', "'one'"),  # an empty phrase is left out
        ("title:(text:x)", None),  # no column left: nothing matches
    ],
)
def test_queries_read_as_fts5_reads_them(query, tsquery):
    assert fulltext.to_tsquery(fulltext.parse(query)) == tsquery


@pytest.mark.parametrize("query", ["one OR", "NOT one", "(one) two", "one (two OR three)", "foo:bar", "c++", '"open'])
def test_what_fts5_refuses_is_refused(query):
    conn = fts5([("one", "two")])
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("SELECT * FROM t WHERE t MATCH ?", [query]).fetchall()
    with pytest.raises(fulltext.QuerySyntaxError):
        fulltext.parse(query)


def test_highlights_and_snippets_are_fts5s():
    rng = random.Random(7)
    rows = [
        (" ".join(rng.choices(WORDS, k=rng.randint(1, 8))), " ".join(rng.choices(WORDS, k=rng.randint(0, 80))))
        for _ in range(60)
    ]
    conn = fts5(rows)
    for query in ("ceasefire", "cafe", '"talks resume"', "xi OR putin", "oil NOT rate", "doha*", "title:envoy"):
        found = fulltext.phrases(fulltext.parse(query))
        for rowid, title_marked, snippet in conn.execute(
            "SELECT rowid, highlight(t, 0, char(2), char(3)), snippet(t, 1, char(2), char(3), '…', 24)"
            " FROM t WHERE t MATCH ?",
            [query],
        ):
            title, text = rows[rowid - 1]
            assert fulltext.highlight(title, found, fulltext.TITLE) == title_marked, (query, title)
            assert fulltext.snippet(text, found, fulltext.TEXT) == snippet, (query, text)


def test_a_document_vector_holds_each_field_from_its_start_mark():
    vector = fulltext.document_vector("Café talks", "Talks, again: talks")
    assert vector == "'^':1A,4B 'cafe':2A 'talks':3A,5B,7B 'again':6B"
