from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from monitor import store as store_module
from monitor.errors import StorageError
from monitor.items import FeedSpec, Item, Mention
from monitor.store import Enrichment, ItemRecord, MatchRecord, PollResult, Store

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def item(guid: str, title: str = "Xi and Putin speak", text: str = "They spoke by phone.") -> Item:
    return Item(guid=guid, link=f"https://news.example/{guid}", title=title, text=text, published_at=NOW)


def poll(store: Store, feed_id: int, *records: ItemRecord, at: datetime = NOW) -> dict[str, int]:
    return store.record_poll(
        PollResult(
            feed_id=feed_id,
            polled_at=at,
            next_poll_at=at + timedelta(minutes=10),
            next_poll_reason="every 10m",
            etag='"v1"',
            last_modified=None,
            title="Wire",
            records=records,
        )
    )


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "var" / "test.db")
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW)
    yield store
    store.close()


def test_a_new_database_is_migrated_marked_and_in_wal_mode(tmp_path):
    path = tmp_path / "new.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(store_module._MIGRATIONS)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4E4D4F4E
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"feeds", "items", "entities", "matches", "alerts", "items_fts"} <= tables


def test_someone_elses_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="not a news-monitor database"):
        Store.open(path)


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="newer than this news-monitor"):
        Store.open(path)


def test_feeds_follow_the_config(store):
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml"), FeedSpec("bbc", "http://127.0.0.1/bbc.xml")], NOW)
    assert [f.name for f in store.feeds()] == ["bbc", "wire"]
    store.sync_feeds([FeedSpec("bbc", "http://127.0.0.1/bbc2.xml")], NOW)
    assert [f.name for f in store.feeds()] == ["bbc"]
    assert [f.url for f in store.feeds()] == ["http://127.0.0.1/bbc2.xml"]
    assert {f.name for f in store.feeds(active_only=False)} == {"bbc", "wire"}


def test_a_poll_writes_items_entities_matches_and_alerts_together(store):
    feed = store.feeds()[0]
    mention = Mention("Putin", "Vladimir Putin", "PERSON", "title", 7, 12)
    hits = [{"term": "Putin", "field": "title", "start": 7, "end": 12, "matched": "Putin", "entity": None}]
    counts = poll(store, feed.id, ItemRecord(item("a"), [mention], [MatchRecord("xi-putin", hits, ("mail", "slack"))]))
    assert counts == {"items": 1, "matches": 1, "alerts": 2, "suppressed": 0}
    [due_mail, due_slack] = sorted(store.due_alerts(NOW), key=lambda a: a.channel)
    assert (due_mail.rule, due_mail.channel, due_mail.feed, due_mail.title) == ("xi-putin", "mail", "wire", "Xi and Putin speak")
    assert due_slack.hits == hits
    [stored] = list(store.iter_items())
    assert stored.mentions == (mention,)
    assert stored.item.title == "Xi and Putin speak"
    assert store.feeds()[0].first_fetch_done and store.feeds()[0].etag == '"v1"'


def test_an_alert_is_created_once_per_rule_channel_and_story(store):
    feed = store.feeds()[0]
    match = MatchRecord("xi-putin", [], ("mail",))
    poll(store, feed.id, ItemRecord(item("a"), [], [match]))
    # The same item changed: stored again, matched again, but no second alert.
    counts = poll(store, feed.id, ItemRecord(item("a", text="Updated: they spoke twice."), [], [match]))
    assert counts["alerts"] == 0
    assert store.count("items") == 1 and store.count("alerts") == 1
    assert store.known_items(feed.id, ["a", "b"]) == {"a": item("a", text="Updated: they spoke twice.").content_hash}


def test_failed_sends_retry_then_die(store):
    feed = store.feeds()[0]
    poll(store, feed.id, ItemRecord(item("a"), [], [MatchRecord("r", [], ("mail",))]))
    [alert] = store.due_alerts(NOW)
    store.mark_failed(alert.id, "HTTP 500", NOW + timedelta(minutes=1))
    assert store.due_alerts(NOW) == []
    [again] = store.due_alerts(NOW + timedelta(minutes=1))
    assert again.attempts == 1
    store.mark_failed(alert.id, "HTTP 500 again", None)
    assert store.alert_counts() == {"dead": 1}
    assert store.alerts()[0]["last_error"] == "HTTP 500 again"
    assert store.alerts()[0]["attempts"] == 2


def test_sent_alerts_are_not_due_again(store):
    feed = store.feeds()[0]
    poll(store, feed.id, ItemRecord(item("a"), [], [MatchRecord("r", [], ("mail",))]))
    [alert] = store.due_alerts(NOW)
    store.mark_sent(alert.id, NOW)
    assert store.due_alerts(NOW + timedelta(days=1)) == []
    assert store.alert_counts() == {"sent": 1}


def test_failure_and_not_modified_update_the_feed(store):
    feed = store.feeds()[0]
    store.record_failure(feed.id, "HTTP 503", NOW, NOW + timedelta(minutes=4), "error backoff (1 in a row)")
    store.record_failure(feed.id, "HTTP 503", NOW, NOW + timedelta(minutes=8), "error backoff (2 in a row)")
    [status] = store.feed_status()
    assert (status["error_count"], status["last_error"], status["next_poll_reason"]) == (2, "HTTP 503", "error backoff (2 in a row)")
    store.record_not_modified(feed.id, NOW, NOW + timedelta(minutes=10), "every 10m")
    [status] = store.feed_status()
    assert status["error_count"] == 0 and status["last_error"] is None
    assert store.feeds_due(NOW + timedelta(minutes=9)) == []
    assert [f.name for f in store.feeds_due(NOW + timedelta(minutes=10))] == ["wire"]


def test_full_text_index_follows_the_items(store):
    feed = store.feeds()[0]
    poll(store, feed.id, ItemRecord(item("a", title="Ceasefire talks in Geneva"), [], []))
    rows = store.db.execute("SELECT title FROM items_fts WHERE items_fts MATCH 'geneva'").fetchall()
    assert rows == [("Ceasefire talks in Geneva",)]


def test_items_without_guid_or_link_are_keyed_by_content(store):
    feed = store.feeds()[0]
    anonymous = Item(guid=None, link=None, title="A wire flash", text="Details to follow.")
    poll(store, feed.id, ItemRecord(anonymous, [], []))
    assert store.known_items(feed.id, [anonymous.key]) == {anonymous.key: anonymous.content_hash}
    assert anonymous.key.startswith("sha256:")


def test_search_ranks_title_hits_first_and_marks_the_words(store):
    from monitor.store import HIGHLIGHT_END, HIGHLIGHT_START

    feed = store.feeds()[0]
    poll(
        store,
        feed.id,
        ItemRecord(item("body", title="Markets steady", text="Traders watched the ceasefire talks closely."), [], []),
        ItemRecord(item("title", title="Ceasefire talks resume in Doha", text="Delegations met again."), [], []),
        ItemRecord(item("none", title="Weather", text="Sunny spells."), [], []),
    )
    hits = store.search("ceasefire")
    assert [hit.title for hit in hits] == ["Ceasefire talks resume in Doha", "Markets steady"]
    assert f"{HIGHLIGHT_START}ceasefire{HIGHLIGHT_END}" in hits[1].snippet
    assert hits[0].title_marked.startswith(f"{HIGHLIGHT_START}Ceasefire{HIGHLIGHT_END}")
    # Text that is not valid FTS5 syntax is searched as plain words.
    assert [hit.title for hit in store.search('ceasefire "talks')] == ["Ceasefire talks resume in Doha", "Markets steady"]
    assert store.search("negotiations") == []


def test_retention_keeps_pending_alerts_and_what_they_refer_to(store):
    feed = store.feeds()[0]
    old = NOW - timedelta(days=200)
    poll(store, feed.id, ItemRecord(item("plain-old"), [], []), at=old)
    poll(store, feed.id, ItemRecord(item("matched-old"), [], [MatchRecord("r", [], ())]), at=old)
    poll(store, feed.id, ItemRecord(item("alerted-old"), [], [MatchRecord("r", [], ("mail",))]), at=old)
    poll(store, feed.id, ItemRecord(item("sent-old"), [], [MatchRecord("r", [], ("mail",))]), at=old)
    poll(store, feed.id, ItemRecord(item("new"), [], []))
    sent = next(a for a in store.alerts() if a["item_id"] == 4)
    store.mark_sent(sent["id"], old)

    deleted = store.apply_retention(NOW, items=timedelta(days=90), matches=timedelta(days=365), alerts=timedelta(days=100))
    assert deleted == {"alerts": 1, "matches": 0, "items": 1}
    keys = {stored.item.guid for stored in store.iter_items()}
    assert keys == {"matched-old", "alerted-old", "sent-old", "new"}
    assert store.alert_counts() == {"pending": 1}
    assert store.search("spoke") and len(store.search("spoke")) == 4  # the index followed

    deleted = store.apply_retention(NOW, items=timedelta(days=90), matches=timedelta(days=100), alerts=None)
    assert deleted == {"alerts": 0, "matches": 2, "items": 2}
    assert {stored.item.guid for stored in store.iter_items()} == {"alerted-old", "new"}
    assert store.apply_retention(NOW, items=None, matches=None, alerts=None) == {"alerts": 0, "matches": 0, "items": 0}


def test_an_older_database_is_migrated_in_place_keeping_its_data(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    monkeypatch.setattr(store_module, "_MIGRATIONS", store_module._MIGRATIONS[:1])
    old = Store.open(path)
    with old.db.conn:  # a feed and an item as version 1 wrote them
        old.db.execute("INSERT INTO feeds (id, name, url) VALUES (1, 'wire', 'http://127.0.0.1/wire.xml')")
        old.db.execute(
            "INSERT INTO items (feed_id, key, guid, title, text, first_seen_at, updated_at, content_hash)"
            " VALUES (1, 'a', 'a', 'Title', 'Text', ?, ?, 'hash')",
            [NOW.isoformat(), NOW.isoformat()],
        )
    old.close()
    monkeypatch.undo()
    migrated = Store.open(path)
    assert migrated.schema_version == len(store_module._MIGRATIONS) > 1
    assert [stored.item.guid for stored in migrated.iter_items()] == ["a"]
    assert migrated.unenriched_count() == 0  # items from before were enriched on arrival
    [feed] = migrated.feeds()
    assert (feed.source, feed.tags, feed.interval) == ("config", (), None)
    migrated.close()


def test_items_stored_unenriched_get_their_entities_and_matches_later(store):
    feed = store.feeds()[0]
    poll(store, feed.id, ItemRecord(item("a"), [], [], enriched=False), ItemRecord(item("b"), [], [], enriched=False))
    [first, second] = store.unenriched_items()
    mention = Mention("Putin", "Vladimir Putin", "PERSON", "title", 7, 12)
    written = store.record_enrichment([Enrichment(first.id, [mention], [MatchRecord("r", [], ())])], NOW)
    assert written == 1
    assert [stored.id for stored in store.unenriched_items()] == [second.id]
    assert store.count("alerts") == 0  # enrichment never alerts
    [stored] = [s for s in store.iter_items() if s.id == first.id]
    assert stored.mentions == (mention,)


def test_cli_feeds_survive_config_syncs_and_config_feeds_cannot_be_removed_from_the_cli(store):
    store.add_feed(FeedSpec("extra", "http://127.0.0.1/extra.xml", timedelta(minutes=5), ("tech",)), NOW)
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW)
    feeds = {feed.name: feed for feed in store.feeds()}
    assert set(feeds) == {"extra", "wire"}
    assert (feeds["extra"].source, feeds["extra"].interval, feeds["extra"].tags) == ("cli", timedelta(minutes=5), ("tech",))
    with pytest.raises(StorageError, match="already has that name or URL"):
        store.add_feed(FeedSpec("other", "http://127.0.0.1/extra.xml"), NOW)
    assert store.remove_feed("wire") == "feed 'wire' is declared in monitor.yaml: remove it there"
    assert store.remove_feed("extra") is None
    assert [feed.name for feed in store.feeds()] == ["wire"]
    assert store.remove_feed("extra") == "no feed named 'extra'"
    store.add_feed(FeedSpec("extra", "http://127.0.0.1/extra2.xml"), NOW)  # back, with its history
    assert {feed.name: feed.url for feed in store.feeds()}["extra"] == "http://127.0.0.1/extra2.xml"
    # The config takes over a CLI feed it now names.
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml"), FeedSpec("extra", "http://127.0.0.1/extra2.xml")], NOW)
    assert {feed.name: feed.source for feed in store.feeds()} == {"extra": "config", "wire": "config"}
