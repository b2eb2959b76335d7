"""The rule tester's full-text prefilter gives the very report of evaluating every stored item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.config import StorySettings
from monitor.history import rule_history
from monitor.items import FeedSpec, Item
from monitor.rules.document import Lexicon
from monitor.rules.evaluate import compile_rule
from monitor.rules.prefilter import required_words
from monitor.store import FeedWrite, Intent, ItemWrite, SqliteStorage

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TEXTS = [
    ("Kremlin says trade talks with Beijing go on", "Putin and Xi spoke of trade."),
    ("Putin's envoy in talks", "The Kremlin’s “trade” offer — refused…"),
    ("Łukaszenko meets Putin", "Minsk and the Kremlin agree on gas."),
    ("Straße closed in Berlin", "Traffic news for the strasse district."),
    ("ﬁnance ministers meet", "Talks on ﬁnance and trade."),
    ("O'Brien wins seat", "Irish trade minister O’Brien spoke."),
    ("Sport: Kremlin Cup", "Tennis results."),
    ("Café owners protest", "Cafe prices rise in Paris; talks fail."),
    ("Zelensky visits Kyiv front", "Ukraine asks for air defence."),
    ("Markets", "Oil prices fall as trade_talks stall; KREMLIN silent."),
]
QUERIES = [
    "Kremlin", "kremlin AND trade", "Putin", "putin AND NOT sport", "lukaszenko", "strasse", "finance",
    "cafe", "o'brien", "brien", "\"trade talks\"", "talks OR zelensky", "NOT sport", "kre*", "title:kremlin",
    "Kremlin NEAR/3 trade", "(putin OR xi) AND kremlin", "trade AND (kremlin OR kyiv)", "/tra.e/",
]  # fmt: skip


@pytest.fixture
def store(tmp_path):
    with SqliteStorage.open(tmp_path / "items.db") as storage:
        storage.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW - timedelta(days=8))
        fid = storage.feed("wire").id
        for n in range(60):
            title, text = TEXTS[n % len(TEXTS)]
            at = NOW - timedelta(hours=2 * n + 1)
            item = Item(guid=f"g{n}", link=f"https://news.example/{n}", title=f"{title} {n}", text=text)
            storage.write(
                Intent(
                    at,
                    (ItemWrite(fid, item),),
                    FeedWrite(fid, at, at + timedelta(minutes=10), "10m", None, None, "Wire"),
                )
            )
        yield storage


def report(store, query: str, *, prefilter: bool, max_items: int | None = None):
    lexicon = Lexicon()
    rule = compile_rule("q", query, lexicon)
    history = rule_history(
        store, rule, lexicon, None, StorySettings(), since=NOW - timedelta(days=7), until=NOW,
        max_items=max_items, stored_stories=True, prefilter=prefilter,
    )  # fmt: skip
    found = history.report
    return (
        history.since, history.cut, found.scanned, found.per_day, found.stories, found.alerts,
        [(match.item_id, match.hits) for match in found.matches],
    )  # fmt: skip


@pytest.mark.parametrize("query", QUERIES)
def test_prefiltered_and_full_evaluation_give_the_same_report(store, query):
    full = report(store, query, prefilter=False)
    assert report(store, query, prefilter=True) == full
    assert report(store, query, prefilter=True, max_items=25) == report(store, query, prefilter=False, max_items=25)


def test_the_words_used_are_those_every_match_must_hold():
    lexicon = Lexicon()

    def words(query: str):
        found = required_words(compile_rule("q", query, lexicon), lexicon)
        return None if found is None else sorted(sorted(clause) for clause in found)

    assert words("kremlin AND trade") == [["kremlin", "trade"]]
    assert words("putin OR xi") == [["putin"], ["xi"]]
    assert words('"trade talks" AND NOT sport') == [["talks", "trade"]]
    assert words("Łukaszenko") == [["lukaszenko"]]
    assert words("NOT sport") is None  # nothing every match holds
    assert words("person:Putin") is None  # an entity: not a word of the index
    assert words("kremlin OR person:Putin") is None  # one branch needs no word
    assert words("o'brien") is None


def test_items_beyond_ascii_are_read_when_the_index_words_them_otherwise(store):
    # FTS5 keeps "łukaszenko", "straße" and "ﬁnance" as they are; the rules fold them to plain letters.
    lexicon = Lexicon()
    for query, title in (("lukaszenko", "Łukaszenko"), ("strasse", "Straße"), ("finance", "ﬁnance")):
        clauses = required_words(compile_rule("q", query, lexicon), lexicon)
        period = store.word_candidates([sorted(clause) for clause in clauses], NOW - timedelta(days=7))
        assert not any(one.indexed for one in period if one.title and one.title.startswith(title))
        matched = report(store, query, prefilter=True)[-1]
        assert matched, query
