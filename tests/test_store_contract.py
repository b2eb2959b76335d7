"""The storage contract: what every implementation of monitor.store.Storage must do.

Each test runs against every implementation in ``IMPLEMENTATIONS`` (SQLite on
a file and in memory, PostgreSQL on a real server); a new backend joins the list and must pass all
of it unchanged. Only the Storage interface is used here, never SQL.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from postgres import database_for

from monitor.errors import ConflictError, NotFoundError, StorageError
from monitor.items import FeedSpec, Item, Mention
from monitor.store import (
    HIGHLIGHT_END,
    HIGHLIGHT_START,
    AlertStatus,
    AlertWrite,
    FeedOutcome,
    FeedWrite,
    Instance,
    Intent,
    ItemWrite,
    MatchWrite,
    SqliteStorage,
    Storage,
    StoryInfo,
    StoryJoin,
)
from monitor.store.postgres import PostgresStorage

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

IMPLEMENTATIONS: dict[str, Callable[[Path], Storage]] = {
    "sqlite-file": lambda tmp: SqliteStorage.open(tmp / "var" / "contract.db"),
    "sqlite-memory": lambda tmp: SqliteStorage.memory(),
    # A database of its own per test on the session's PostgreSQL server (tests/postgres.py).
    "postgresql": lambda tmp: PostgresStorage.open(database_for(tmp)),
}
# Implementations of which two objects opened alike use one database (two processes, say).
SHARED: dict[str, Callable[[Path], Storage]] = {
    "sqlite-file": IMPLEMENTATIONS["sqlite-file"],
    "postgresql": IMPLEMENTATIONS["postgresql"],
}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def store(request, tmp_path) -> Iterator[Storage]:
    if request.param == "postgresql":
        request.getfixturevalue("postgres")  # the server lives for the session and is stopped at its end
    with IMPLEMENTATIONS[request.param](tmp_path) as storage:
        storage.sync_feeds(
            [FeedSpec("wire", "http://127.0.0.1/wire.xml"), FeedSpec("bbc", "http://127.0.0.1/bbc.xml")], NOW
        )
        yield storage


def item(
    guid: str, title: str = "Xi and Putin speak", text: str = "They spoke by phone.", link: str | None = ""
) -> Item:
    return Item(
        guid=guid,
        link=f"https://news.example/{guid}" if link == "" else link,
        title=title,
        text=text,
        published_at=NOW - timedelta(hours=1),
    )


def feed_id(store: Storage, name: str = "wire") -> int:
    return store.feed(name).id


def poll(store: Storage, *writes: ItemWrite, at: datetime = NOW, feed: str = "wire") -> list[int]:
    """Write a poll of ``feed`` that brought ``writes``; the item ids."""
    fid = feed_id(store, feed)
    writes = tuple(ItemWrite(fid, **{k: v for k, v in w.__dict__.items() if k != "feed_id"}) for w in writes)
    return store.write(
        Intent(at, writes, FeedWrite(fid, at, at + timedelta(minutes=10), "every 10m", '"v1"', None, "Wire"))
    )


def new(guid: str, *, alerts: tuple[AlertWrite, ...] = (), story: StoryInfo | None = None, **kw) -> ItemWrite:
    return ItemWrite(0, kw.pop("item", None) or item(guid), alerts=alerts, story=story, **kw)


def send(rule: str = "r", channel: str = "mail") -> AlertWrite:
    return AlertWrite(rule, channel, AlertStatus.PENDING)


# --- feeds ------------------------------------------------------------------------------------


def test_feeds_follow_the_config(store):
    assert [f.name for f in store.feeds()] == ["bbc", "wire"]
    store.sync_feeds([FeedSpec("bbc", "http://127.0.0.1/bbc2.xml")], NOW)
    assert [(f.name, f.url) for f in store.feeds()] == [("bbc", "http://127.0.0.1/bbc2.xml")]
    assert {f.name for f in store.feeds(active_only=False)} == {"bbc", "wire"}
    with pytest.raises(NotFoundError, match="no feed named 'wire'"):
        store.feed("wire")


def test_cli_feeds_survive_config_syncs_and_conflicts_raise_typed_errors(store):
    store.add_feed(FeedSpec("extra", "http://127.0.0.1/extra.xml", timedelta(minutes=5), ("tech",)), NOW)
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW)
    extra = store.feed("extra")
    assert (extra.source, extra.interval, extra.tags) == ("cli", timedelta(minutes=5), ("tech",))
    with pytest.raises(ConflictError, match="already has that name or URL"):
        store.add_feed(FeedSpec("other", "http://127.0.0.1/extra.xml"), NOW)
    with pytest.raises(ConflictError, match="declared in monitor.yaml"):
        store.remove_feed("wire")
    store.remove_feed("extra")
    assert [feed.name for feed in store.feeds()] == ["wire"]
    with pytest.raises(NotFoundError):
        store.remove_feed("extra")
    store.add_feed(FeedSpec("extra", "http://127.0.0.1/extra2.xml"), NOW)  # back, with its history
    assert store.feed("extra").url == "http://127.0.0.1/extra2.xml"
    store.sync_feeds(
        [FeedSpec("wire", "http://127.0.0.1/wire.xml"), FeedSpec("extra", "http://127.0.0.1/extra2.xml")], NOW
    )
    assert {feed.name: feed.source for feed in store.feeds()} == {"extra": "config", "wire": "config"}


def test_feeds_added_together_are_added_whole_or_not_at_all(store):
    store.add_feed(FeedSpec("gone", "http://127.0.0.1/gone.xml"), NOW)
    store.remove_feed("gone")
    specs = [FeedSpec(f"f{n}", f"http://127.0.0.1/{n}.xml", tags=("imported",)) for n in range(3)]
    store.add_feeds([*specs, FeedSpec("gone", "http://127.0.0.1/gone.xml")], NOW)  # the removed one comes back
    assert {feed.name: feed.source for feed in store.feeds()} == {
        "bbc": "config", "wire": "config", "gone": "cli", "f0": "cli", "f1": "cli", "f2": "cli",
    }  # fmt: skip
    assert store.feed("f1").tags == ("imported",)
    for clash in (FeedSpec("new", "http://127.0.0.1/wire.xml"), FeedSpec("f0", "http://127.0.0.1/other.xml")):
        with pytest.raises(ConflictError, match="already has that name or URL"):
            store.add_feeds([FeedSpec("fine", "http://127.0.0.1/fine.xml"), clash], NOW)
    with pytest.raises(ConflictError):  # the same URL twice in one batch
        store.add_feeds([FeedSpec("x", "http://127.0.0.1/x.xml"), FeedSpec("y", "http://127.0.0.1/x.xml")], NOW)
    assert "fine" not in {feed.name for feed in store.feeds(active_only=False)}


def test_failure_and_not_modified_update_the_feed(store):
    fid = feed_id(store)
    store.record_feed_outcome(
        FeedOutcome(fid, NOW, NOW + timedelta(minutes=4), "error backoff (1 in a row)", "HTTP 503")
    )
    store.record_feed_outcome(
        FeedOutcome(fid, NOW, NOW + timedelta(minutes=8), "error backoff (2 in a row)", "HTTP 503")
    )
    [status] = [s for s in store.feed_status() if s.name == "wire"]
    assert (status.error_count, status.last_error, status.next_poll_reason) == (
        2,
        "HTTP 503",
        "error backoff (2 in a row)",
    )
    assert status.last_error_at == NOW and status.last_error_at.tzinfo is not None
    [history] = [h for h in store.feed_histories(NOW, timedelta(days=28)) if h.name == "wire"]
    assert history.failing_since == NOW and history.state == "ok"
    store.record_feed_outcome(FeedOutcome(fid, NOW, NOW + timedelta(minutes=10), "every 10m"))
    [status] = [s for s in store.feed_status() if s.name == "wire"]
    assert status.error_count == 0 and status.last_error is None and status.last_success_at == NOW
    assert "wire" not in {f.name for f in store.feeds_due(NOW + timedelta(minutes=9))}
    assert "wire" in {f.name for f in store.feeds_due(NOW + timedelta(minutes=10))}


def test_the_digest_of_the_document_last_parsed_is_kept_until_the_url_changes(store):
    fid = feed_id(store)
    assert store.feed("wire").body_hash is None
    store.write(Intent(NOW, (), FeedWrite(fid, NOW, NOW + timedelta(minutes=10), "every 10m", None, None, None, "d1")))
    assert store.feed("wire").body_hash == "d1"
    store.record_feed_outcome(FeedOutcome(fid, NOW, NOW + timedelta(minutes=10), "every 10m"))  # unchanged: kept
    assert store.feed("wire").body_hash == "d1"
    store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire2.xml"), FeedSpec("bbc", "http://127.0.0.1/bbc.xml")], NOW)
    assert store.feed("wire").body_hash is None


# --- the one write path -------------------------------------------------------------------------


def test_a_poll_writes_feed_items_entities_matches_and_alerts_together(store):
    mention = Mention("Putin", "Vladimir Putin", "PERSON", "title", 7, 12)
    hits = ({"term": "Putin", "field": "title", "start": 7, "end": 12, "matched": "Putin", "entity": None},)
    [item_id] = poll(
        store,
        new(
            "a",
            mentions=(mention,),
            matches=(MatchWrite("xi-putin", hits),),
            alerts=(send("xi-putin", "mail"), send("xi-putin", "slack")),
        ),
    )
    [due_mail, due_slack] = sorted(store.due_alerts(NOW), key=lambda a: a.channel)
    assert (due_mail.rule, due_mail.channel, due_mail.feed, due_mail.title) == (
        "xi-putin",
        "mail",
        "wire",
        "Xi and Putin speak",
    )
    assert due_slack.hits == hits and due_slack.status == AlertStatus.PENDING and due_slack.story_id == item_id
    stored = store.item(item_id)
    assert stored.mentions == (mention,) and stored.item.title == "Xi and Putin speak" and stored.story_id == item_id
    wire = store.feed("wire")
    assert wire.first_fetch_done and wire.etag == '"v1"' and wire.title == "Wire"
    assert store.known_items(wire.id, ["a", "b"])["a"].content_hash == item("a").content_hash
    assert set(store.known_items(wire.id, ["a", "b"])) == {"a"}


def test_a_changed_item_keeps_its_id_and_story_and_alerts_once_per_rule_and_channel(store):
    [first] = poll(store, new("a", alerts=(send(),)))
    changed = item("a", text="Updated: they spoke twice.")
    [again] = poll(store, new("a", item=changed, item_id=first, alerts=(send(),)))
    assert again == first
    assert store.count("items") == 1 and store.count("alerts") == 1
    assert store.known_items(feed_id(store), ["a"])["a"].content_hash == changed.content_hash


def test_alert_states_are_written_as_decided(store):
    held = AlertWrite("r", "mail", AlertStatus.HELD, "digest at 08:00 UTC", NOW + timedelta(hours=3))
    suppressed = AlertWrite("r", "slack", AlertStatus.SUPPRESSED, "duplicate: story already alerted 5 min ago")
    poll(store, new("a", alerts=(held, suppressed)))
    assert store.due_alerts(NOW) == []
    [due] = store.due_alerts(NOW + timedelta(hours=3))
    assert (due.status, due.channel, due.due_since) == (AlertStatus.HELD, "mail", NOW + timedelta(hours=3))
    assert store.alert_counts() == {AlertStatus.HELD: 1, AlertStatus.SUPPRESSED: 1}
    [listed_suppressed, listed_held] = store.list_alerts()
    assert listed_suppressed.reason.startswith("duplicate") and listed_held.reason == "digest at 08:00 UTC"
    assert store.list_alerts(status=AlertStatus.HELD) == [listed_held]


def test_items_join_stored_stories_and_stories_of_the_same_batch(store):
    info = StoryInfo("news.example/story", b"\x00" * 8, ("link:news.example/story",))
    [root] = poll(store, new("a", story=info, alerts=(send(),)))
    later = NOW + timedelta(minutes=5)
    ids = poll(
        store,
        new(
            "b",
            story=info,
            join=StoryJoin(story_id=root),
            alerts=(AlertWrite("r", "mail", AlertStatus.SUPPRESSED, "dup"),),
        ),
        new("c", story=StoryInfo(None, b"\x01" * 8, ("mh00:ff",)), alerts=(send(),)),
        new("d", story=StoryInfo(None, b"\x01" * 8, ("mh00:ff",)), join=StoryJoin(batch_index=1)),
        at=later,
        feed="bbc",
    )
    b, c, d = ids
    assert [store.item(i).story_id for i in ids] == [root, c, c]
    alerts = {alert.item_id: alert for alert in store.list_alerts()}
    assert alerts[b].story_id == root and alerts[c].story_id == c
    # The story's outlets, in the order they ran it.
    assert alerts[root].outlets == ("wire", "bbc")
    order = store.join_order([root, b, c, d])
    assert sorted(order, key=order.get) == [root, b, c, d]


def test_a_due_alert_carries_the_other_outlets_of_its_story_with_their_links(store):
    info = StoryInfo("news.example/story", b"\x00" * 8, ("link:news.example/story",))
    [root] = poll(store, new("a", story=info, alerts=(send(),)))
    later = NOW + timedelta(minutes=5)
    poll(store, new("b", story=info, join=StoryJoin(story_id=root)), at=later, feed="bbc")
    poll(store, new("c", story=info, join=StoryJoin(story_id=root), item=item("c", link=None)), at=later, feed="bbc")
    [due] = [alert for alert in store.due_alerts(later) if alert.item_id == root]
    # The alert's own feed is not "another outlet"; a feed that ran the story twice is listed once,
    # with the link of the item it ran first.
    assert due.outlet_links == (("bbc", "https://news.example/b"),)
    assert due.outlets == ("bbc",)


def test_a_snapshot_gives_the_newest_candidates_per_key_within_the_window(store):
    key = "link:news.example/boilerplate"
    info = StoryInfo("news.example/boilerplate", b"fp", (key,))
    for minute in range(25):
        poll(store, new(f"i{minute}", story=info), at=NOW + timedelta(minutes=minute))
    snapshot = store.snapshot(
        feed_id=None, item_keys=(), story_keys=[key, "mh00:none"], since=NOW + timedelta(minutes=2), pairs=(), now=NOW
    )
    found = snapshot.candidates[key]
    assert len(found) == 20  # bounded, the newest first in the store's choice
    assert {c.seen_at for c in found} == {NOW + timedelta(minutes=m) for m in range(5, 25)}
    assert all(c.fingerprint == b"fp" and c.link_key == "news.example/boilerplate" for c in found)
    assert "mh00:none" not in snapshot.candidates
    window = store.snapshot(
        feed_id=None, item_keys=(), story_keys=[key], since=NOW + timedelta(minutes=22), pairs=(), now=NOW
    )
    assert len(window.candidates[key]) == 3


def test_a_snapshot_holds_the_pacing_history_and_what_known_items_alerted(store):
    [a] = poll(store, new("a", alerts=(send("r", "mail"),)), at=NOW - timedelta(minutes=90))
    [b] = poll(
        store,
        new("b", alerts=(send("r", "mail"), AlertWrite("r", "slack", AlertStatus.HELD, "digest", NOW))),
        at=NOW - timedelta(minutes=30),
    )
    [c] = poll(
        store,
        new("c", alerts=(AlertWrite("r", "mail", AlertStatus.SUPPRESSED, "dup"),)),
        at=NOW - timedelta(minutes=10),
    )
    [sent] = [alert for alert in store.due_alerts(NOW) if alert.story_id == b and alert.channel == "mail"]
    store.mark_sent(sent.id, NOW - timedelta(minutes=20))
    snapshot = store.snapshot(
        feed_id=feed_id(store), item_keys=["a", "b", "zz"], story_keys=(), since=NOW - timedelta(days=3),
        pairs=[("r", "mail"), ("r", "slack"), ("other", "mail")], now=NOW,
    )  # fmt: skip
    assert set(snapshot.known) == {"a", "b"}
    # Only instant alerts (pending, sent, dead) of the last hour count.
    assert snapshot.history.instant == {
        ("r", "mail"): (NOW - timedelta(minutes=30),),
        ("r", "slack"): (),
        ("other", "mail"): (),
    }
    assert snapshot.history.last_for_story[("r", "mail", a)] == NOW - timedelta(minutes=90)
    assert snapshot.history.last_for_story[("r", "mail", b)] == NOW - timedelta(minutes=20)  # the sent time
    assert snapshot.history.last_for_story[("r", "slack", b)] == NOW - timedelta(minutes=30)  # held counts
    assert ("r", "mail", c) not in snapshot.history.last_for_story  # suppressed does not
    assert snapshot.alerted_items == {(a, "r", "mail"), (b, "r", "mail"), (b, "r", "slack")}


def test_a_write_is_all_or_nothing(store):
    before = store.count("items")
    with pytest.raises(RuntimeError), store.transaction():
        poll(store, new("a", alerts=(send(),)), new("b"))
        raise RuntimeError("the decision failed half way")
    assert store.count("items") == before and store.count("alerts") == 0
    assert not store.feed("wire").first_fetch_done


def test_items_stored_unenriched_get_their_entities_matches_and_story_later(store):
    a, b = poll(store, new("a", enriched=False, backfill=True), new("b", enriched=False, backfill=True))
    assert [s.id for s in store.unenriched_items()] == [a, b] and store.unenriched_count() == 2
    stored = store.unenriched_items()[0]
    assert stored.backfill and stored.story is None
    mention = Mention("Putin", "Vladimir Putin", "PERSON", "title", 7, 12)
    info = StoryInfo(None, b"fp", ("mh00:aa",))
    later = NOW + timedelta(seconds=30)
    store.write(
        Intent(
            later,
            (
                ItemWrite(
                    stored_feed(store, stored.feed),
                    stored.item,
                    item_id=a,
                    story=info,
                    mentions=(mention,),
                    matches=(MatchWrite("r", ()),),
                ),
            ),
        )
    )
    assert [s.id for s in store.unenriched_items()] == [b]
    enriched = store.item(a)
    assert enriched.mentions == (mention,) and enriched.story == StoryInfo(None, b"fp", ())
    assert enriched.first_seen_at == NOW  # enrichment does not make an item new
    assert store.count("alerts") == 0 and store.join_order([a]) != {}


def test_matches_of_a_first_fetch_are_listed_and_counted_apart_from_news(store):
    old_a, old_b = poll(store, new("a", enriched=False, backfill=True), new("b", enriched=False, backfill=True))
    fresh = poll(store, new("c", matches=(MatchWrite("r", ()),), alerts=(send(),)), feed="bbc")[0]
    assert store.backfill_match_count() == 0 and store.backfill_matches() == []
    later = NOW + timedelta(seconds=30)
    wire = stored_feed(store, "wire")
    enriched = tuple(
        ItemWrite(wire, stored.item, item_id=stored.id, story=StoryInfo(None, b"fp", ()), matches=matches)
        for stored, matches in zip(
            store.unenriched_items(), [(MatchWrite("r", ()), MatchWrite("s", ())), (MatchWrite("s", ()),)], strict=True
        )
    )
    store.write(Intent(later, enriched))
    assert store.backfill_match_count() == 3
    found = store.backfill_matches()
    assert {(m.item_id, m.rule) for m in found} == {(old_a, "r"), (old_a, "s"), (old_b, "s")}
    assert fresh not in {m.item_id for m in found}
    first = next(m for m in found if m.item_id == old_a)
    assert (first.feed, first.title, first.link) == ("wire", "Xi and Putin speak", "https://news.example/a")
    assert first.first_seen_at == NOW and first.matched_at == later and first.published_at == NOW - timedelta(hours=1)
    assert {m.item_id for m in store.backfill_matches(rule="r")} == {old_a}
    assert len(store.backfill_matches(limit=2)) == 2


def stored_feed(store: Storage, name: str) -> int:
    return store.feed(name).id


# --- the outbox -----------------------------------------------------------------------------


def test_failed_sends_retry_then_die(store):
    poll(store, new("a", alerts=(send(),)))
    [alert] = store.due_alerts(NOW)
    store.mark_failed(alert.id, "HTTP 500", NOW + timedelta(minutes=1))
    assert store.due_alerts(NOW) == []
    [again] = store.due_alerts(NOW + timedelta(minutes=1))
    assert again.attempts == 1
    store.mark_failed(alert.id, "HTTP 500 again", None)
    assert store.alert_counts() == {AlertStatus.DEAD: 1}
    dead = store.alert(alert.id)
    assert (dead.status, dead.last_error, dead.attempts) == (AlertStatus.DEAD, "HTTP 500 again", 2)
    assert store.retry_alerts(NOW, dead=True) == 1
    assert store.alert(alert.id).status == AlertStatus.PENDING


def test_sent_and_held_alerts(store):
    poll(store, new("a", alerts=(send(),)), new("b", alerts=(send(),)))
    first, second = store.due_alerts(NOW)
    store.mark_sent(first.id, NOW)
    store.mark_held(second.id, "quiet hours until 07:00 Europe/Paris", NOW + timedelta(hours=8))
    assert [a.id for a in store.due_alerts(NOW + timedelta(hours=7))] == []
    [released] = store.due_alerts(NOW + timedelta(hours=8))
    assert released.id == second.id and released.status == AlertStatus.HELD
    assert store.alert(first.id).sent_at == NOW


def test_a_claimed_alert_is_nobody_elses_until_its_lease_ends(store):
    a, b = poll(store, new("a", alerts=(send("r", "mail"),)), new("b", alerts=(send("r", "slack"),)))
    [alert_a] = [alert.id for alert in store.due_alerts(NOW) if alert.channel == "mail"]
    [alert_b] = [alert.id for alert in store.due_alerts(NOW) if alert.channel == "slack"]
    lease = NOW + timedelta(minutes=1)
    assert store.claim_alerts([alert_a], "one", NOW, lease) == [alert_a]
    # Held by "one": not due for anybody, not claimable by "two"; "one" may renew it.
    assert [alert.id for alert in store.due_alerts(NOW)] == [alert_b]
    assert store.due_channels(NOW) == ["slack"]
    assert store.claim_alerts([alert_a, alert_b], "two", NOW + timedelta(seconds=59), lease) == [alert_b]
    assert store.due_channels(NOW) == []
    assert store.claim_alerts([alert_a], "one", NOW + timedelta(seconds=30), lease + timedelta(seconds=30)) == [alert_a]
    # The lease ran out (its holder died, say): due again, and "two" may claim it.
    later = lease + timedelta(seconds=30)
    assert [alert.id for alert in store.due_alerts(later, channel="mail")] == [alert_a]
    assert store.claim_alerts([alert_a], "two", later, later + timedelta(minutes=1)) == [alert_a]
    assert store.claim_alerts([alert_a], "one", later, later + timedelta(minutes=1)) == []
    assert store.alert(alert_a).status == AlertStatus.PENDING and store.alert(alert_a).attempts == 0
    assert {a, b} == {store.alert(alert_a).item_id, store.alert(alert_b).item_id}


def test_only_due_alerts_can_be_claimed_and_due_alerts_are_found_per_channel(store):
    poll(
        store,
        new("a", alerts=(send("r", "mail"),)),
        new(
            "b",
            alerts=(send("r", "slack"), AlertWrite("r", "mail", AlertStatus.HELD, "digest", NOW + timedelta(hours=1))),
        ),
    )
    [mail] = store.due_alerts(NOW, channel="mail")
    [slack] = store.due_alerts(NOW, channel="slack")
    assert store.due_alerts(NOW, channel="nowhere") == []
    assert store.due_channels(NOW) == ["mail", "slack"]
    [held] = [alert.id for alert in store.list_alerts(status=AlertStatus.HELD)]
    assert store.claim_alerts([held], "one", NOW, NOW + timedelta(minutes=1)) == []  # held, not yet released
    store.mark_sent(slack.id, NOW)
    assert store.claim_alerts([slack.id, 9999], "one", NOW, NOW + timedelta(minutes=1)) == []  # sent; unknown
    release = NOW + timedelta(hours=1)
    assert store.claim_alerts([held, mail.id], "one", release, release + timedelta(minutes=1)) == sorted(
        [held, mail.id]
    )


def test_marking_an_alert_ends_its_claim(store):
    poll(store, *(new(guid, alerts=(send(),)) for guid in "abcd"))
    ids = [alert.id for alert in store.due_alerts(NOW)]
    lease = NOW + timedelta(minutes=10)
    assert store.claim_alerts(ids, "one", NOW, lease) == sorted(ids)
    failed, sent, held, left = ids
    store.mark_failed(failed, "HTTP 500", NOW + timedelta(seconds=30))
    store.mark_sent(sent, NOW)
    store.mark_held(held, "quiet hours", NOW + timedelta(minutes=1))
    # Each marked row is free at once: "two" takes the failed one when it is due again, the held one
    # when it is released; the sent one is done. The unmarked one is "one"'s until the lease ends.
    soon = NOW + timedelta(minutes=1)
    assert store.claim_alerts(ids, "two", soon, soon + timedelta(minutes=1)) == sorted([failed, held])
    assert store.alert(failed).attempts == 1 and store.alert(sent).status == AlertStatus.SENT
    assert store.release_claims("one") == 1
    assert [alert.id for alert in store.due_alerts(soon)] == [left]  # as it was, and due for anyone
    assert store.alert(left).status == AlertStatus.PENDING and store.alert(left).attempts == 0
    assert store.release_claims("one") == 0


@pytest.mark.parametrize("implementation", sorted(SHARED))
def test_two_stores_claiming_at_once_never_get_the_same_alert(implementation, tmp_path):
    with SHARED[implementation](tmp_path) as setup:
        setup.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW)
        poll(setup, *(new(f"i{n}", alerts=(send("r", "mail" if n % 2 else "slack"),)) for n in range(120)))
        ids = [alert.id for alert in setup.due_alerts(NOW, limit=1000)]
    assert len(ids) == 120
    got: dict[str, list[int]] = {}
    start = threading.Barrier(2)

    def claim(owner: str, seed: int) -> None:
        rng = random.Random(seed)
        order = ids[:]
        rng.shuffle(order)
        mine: list[int] = []
        with SHARED[implementation](tmp_path) as store:  # each its own store object, used by its own thread
            start.wait()
            while order:  # one at a time and in small batches, as senders do
                size = rng.choice((1, 1, 3))
                batch, order = order[:size], order[size:]
                mine += store.claim_alerts(batch, owner, NOW, NOW + timedelta(minutes=1))
                time.sleep(0.002)  # a send between two claims, which lets the other in
            got[owner] = mine

    threads = [threading.Thread(target=claim, args=(owner, seed)) for seed, owner in enumerate(("one", "two"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(got) == {"one", "two"}
    assert not set(got["one"]) & set(got["two"])
    assert sorted(got["one"] + got["two"]) == sorted(ids)
    assert got["one"] and got["two"]  # both took part
    with SHARED[implementation](tmp_path) as store:
        assert store.due_alerts(NOW) == []


def test_lookups_of_what_is_not_there_raise_not_found(store):
    with pytest.raises(NotFoundError):
        store.alert(9999)
    with pytest.raises(NotFoundError):
        store.item(9999)
    with pytest.raises(NotFoundError, match="9999"):
        store.retry_alerts(NOW, ids=[9999])
    assert isinstance(NotFoundError("x"), (StorageError, LookupError))


# --- search, history, retention ---------------------------------------------------------------


def test_search_ranks_title_hits_first_and_marks_the_words(store):
    poll(
        store,
        new("body", item=item("body", title="Markets steady", text="Traders watched the ceasefire talks closely.")),
        new("title", item=item("title", title="Ceasefire talks resume in Doha", text="Delegations met again.")),
        new("none", item=item("none", title="Weather", text="Sunny spells.")),
    )
    hits = store.search("ceasefire")
    assert [hit.title for hit in hits] == ["Ceasefire talks resume in Doha", "Markets steady"]
    assert f"{HIGHLIGHT_START}ceasefire{HIGHLIGHT_END}" in hits[1].snippet
    assert hits[0].title_marked.startswith(f"{HIGHLIGHT_START}Ceasefire{HIGHLIGHT_END}")
    # Text that is not valid search syntax is searched as plain words.
    assert [hit.title for hit in store.search('ceasefire "talks')] == [
        "Ceasefire talks resume in Doha",
        "Markets steady",
    ]
    assert store.search("negotiations") == []


def test_items_without_guid_or_link_are_keyed_by_content(store):
    anonymous = Item(guid=None, link=None, title="A wire flash", text="Details to follow.")
    poll(store, new("x", item=anonymous))
    assert anonymous.key.startswith("sha256:")
    assert set(store.known_items(feed_id(store), [anonymous.key])) == {anonymous.key}
    [found] = list(store.iter_items())
    assert found.item.guid is None and found.item.link is None


def test_history_in_order_with_find_and_first_seen(store):
    poll(store, new("old"), at=NOW - timedelta(days=2))
    poll(store, new("new"))
    assert [s.item.guid for s in store.iter_items()] == ["old", "new"]
    assert [s.item.guid for s in store.iter_items(since=NOW - timedelta(hours=1))] == ["new"]
    assert store.first_seen() == NOW - timedelta(days=2)
    assert store.first_seen(NOW - timedelta(days=1)) == NOW
    [by_guid] = store.find_items("old")
    [by_link] = store.find_items("https://news.example/old")
    assert by_guid.id == by_link.id
    assert store.find_items(str(by_guid.id))[0].item.guid == "old"


def test_word_candidates_come_from_the_full_text_index_and_items_by_ids_reads_them(store):
    poll(store, new("old", item=item("old", "Kremlin trade talks", "Old news.")), at=NOW - timedelta(days=2))
    ids = poll(
        store,
        new("both", item=item("both", "Kremlin says", "Trade talks go on.")),
        new("one", item=item("one", "Kremlin’s “offer”", "No deal — yet.")),
        new("accents", item=item("accents", "Łukaszenko meets the Kremlin", "Trade in gas.")),
        new("none", item=item("none", "Sport results", "Tennis.")),
    )
    found = store.word_candidates([["kremlin", "trade"], ["tennis"]], NOW - timedelta(hours=1))
    assert [(one.id, one.indexed) for one in found] == list(zip(ids, [True, False, True, True], strict=True))
    assert all(one.first_seen_at == NOW for one in found)
    # Not found, and beyond ASCII: title and text come along (the index may word them otherwise).
    by_id = {one.id: one for one in found}
    assert (by_id[ids[1]].title, by_id[ids[1]].text) == ("Kremlin’s “offer”", "No deal — yet.")
    assert by_id[ids[0]].title is None and by_id[ids[3]].title is None
    assert [one.item.guid for one in store.items_by_ids([ids[3], ids[0], 999_999])] == ["both", "none"]
    assert store.items_by_ids([]) == []


def test_dashboard_counts_place_items_when_they_happened_if_their_published_time_is_plausible(store):
    def dated(guid: str, published: datetime | None) -> ItemWrite:
        one = Item(guid=guid, link=f"https://news.example/{guid}", title="Kyiv talks", text="", published_at=published)
        return new(guid, item=one, mentions=(Mention("Kyiv", "Kyiv", "GPE", "title", 0, 4),))

    poll(
        store,
        dated("week-old", NOW - timedelta(days=3)),  # counted three days back
        dated("future", NOW + timedelta(days=1)),  # after it was first seen: counted at first sight
        dated("ancient", NOW - timedelta(days=40)),  # before the window: counted at first sight
        dated("undated", None),
    )
    week, today, back = timedelta(days=7), NOW.date(), (NOW - timedelta(days=3)).date()
    assert store.feed_items_per_day(NOW - week, window=week) == {"wire": {back: 1, today: 3}}
    assert store.feed_items_per_day(NOW - week) == {"wire": {today: 4}}  # by first sight
    days = store.entity_mentions([("Kyiv", "GPE")], NOW - week, bucket="day", window=week)
    midnight = datetime.combine(today, datetime.min.time(), UTC)
    assert days == {("Kyiv", "GPE"): {midnight - timedelta(days=3): 1, midnight: 3}}


def test_retention_keeps_pending_and_held_alerts_and_what_they_refer_to(store):
    old = NOW - timedelta(days=200)
    poll(store, new("plain-old"), at=old)
    poll(store, new("matched-old", matches=(MatchWrite("r", ()),)), at=old)
    poll(store, new("alerted-old", matches=(MatchWrite("r", ()),), alerts=(send(),)), at=old)
    poll(store, new("sent-old", matches=(MatchWrite("r", ()),), alerts=(send(),)), at=old)
    poll(
        store,
        new("held-old", alerts=(AlertWrite("r", "mail", AlertStatus.HELD, "digest", NOW + timedelta(hours=1)),)),
        at=old,
    )
    poll(store, new("new"))
    [sent] = [a for a in store.list_alerts() if store.item(a.item_id).item.guid == "sent-old"]
    store.mark_sent(sent.id, old)

    deleted = store.apply_retention(
        NOW, items=timedelta(days=90), matches=timedelta(days=365), alerts=timedelta(days=100)
    )
    assert deleted == {"alerts": 1, "matches": 0, "items": 1}
    assert {s.item.guid for s in store.iter_items()} == {"matched-old", "alerted-old", "sent-old", "held-old", "new"}
    assert store.alert_counts() == {AlertStatus.PENDING: 1, AlertStatus.HELD: 1}
    assert len(store.search("spoke")) == 5  # the index followed

    deleted = store.apply_retention(NOW, items=timedelta(days=90), matches=timedelta(days=100), alerts=None)
    assert deleted == {"alerts": 0, "matches": 2, "items": 2}
    assert {s.item.guid for s in store.iter_items()} == {"alerted-old", "held-old", "new"}
    assert store.apply_retention(NOW, items=None, matches=None, alerts=None) == {"alerts": 0, "matches": 0, "items": 0}


def test_records_carry_aware_datetimes(store):
    poll(store, new("a", alerts=(send(),)))
    [alert] = store.list_alerts()
    [stored] = list(store.iter_items())
    for moment in (alert.created_at, alert.next_attempt_at, stored.first_seen_at, stored.item.published_at):
        assert moment is not None and moment.utcoffset() == timedelta(0)
    assert alert.to_dict()["created_at"] == NOW.isoformat()


def test_every_implementation_has_the_whole_interface(store):
    wanted = {name for name in dir(Storage) if not name.startswith("_")} | {"__enter__", "__exit__"}
    assert (
        sorted(name for name in wanted if not callable(getattr(store, name, None)) and name != "schema_version") == []
    )
    assert isinstance(store.schema_version, int)


# --- WebSub subscriptions ---------------------------------------------------------------------

HUB = "https://hub.example/"
TOPIC = "https://news.example/wire.xml"


def subscribe(store: Storage, token: str, feed: str = "wire", at: datetime = NOW):
    return store.add_subscription(feed_id(store, feed), hub=HUB, topic=TOPIC, token=token, secret="s3cret", now=at)


def test_a_subscription_lives_from_request_to_removal(store):
    sub = subscribe(store, "t1")
    assert (sub.feed, sub.feed_active, sub.state, sub.verified_at) == ("wire", True, "requested", None)
    assert sub.requested_at == NOW
    assert (sub.hub, sub.topic, sub.secret) == (HUB, TOPIC, "s3cret")
    assert "s3cret" not in repr(sub)

    verified = NOW + timedelta(seconds=5)
    store.mark_subscription("t1", "active", verified, lease_until=verified + timedelta(days=7))
    active = store.subscription("t1")
    assert (active.state, active.verified_at, active.lease_until) == ("active", verified, verified + timedelta(days=7))

    store.mark_subscription("t1", "failed", verified + timedelta(days=6), error="hub.example: HTTP 500")
    failed = store.subscription("t1")
    assert (failed.state, failed.last_error, failed.requested_at) == ("failed", "hub.example: HTTP 500", NOW)
    assert failed.lease_until == verified + timedelta(days=7)  # what the hub granted still holds

    renewed = NOW + timedelta(days=6, hours=1)
    store.mark_subscription("t1", "requested", renewed)
    store.record_push("t1", renewed)
    again = store.subscription("t1")
    assert (again.state, again.last_error) == ("requested", None)
    assert again.requested_at == again.last_push_at == renewed
    for moment in (again.requested_at, again.verified_at, again.lease_until, again.last_push_at):
        assert moment is not None and moment.utcoffset() == timedelta(0)

    store.mark_subscription("t1", "unsubscribing", renewed)
    assert store.subscription("t1").state == "unsubscribing"
    store.remove_subscription("t1")
    store.remove_subscription("t1")  # already gone: nothing to do
    with pytest.raises(NotFoundError):
        store.subscription("t1")
    with pytest.raises(NotFoundError):
        store.mark_subscription("t1", "active", NOW, lease_until=NOW)
    with pytest.raises(NotFoundError):
        store.record_push("t1", NOW)


def test_subscriptions_are_listed_per_feed_and_tokens_are_unique(store):
    subscribe(store, "a")
    subscribe(store, "b")  # the successor of "a", while "a" is being unsubscribed
    subscribe(store, "c", feed="bbc")
    assert [s.token for s in store.subscriptions()] == ["a", "b", "c"]
    assert [s.token for s in store.subscriptions(feed_id(store))] == ["a", "b"]
    with pytest.raises(ConflictError):
        subscribe(store, "a", feed="bbc")
    with pytest.raises(ValueError):
        store.mark_subscription("a", "bogus", NOW)  # type: ignore[arg-type]


def test_a_subscription_knows_its_feed_was_removed(store):
    store.add_feed(FeedSpec("desk", "http://127.0.0.1/desk.xml"), NOW)
    subscribe(store, "d", feed="desk")
    store.remove_feed("desk")
    [sub] = [s for s in store.subscriptions() if s.token == "d"]
    assert sub.feed == "desk" and not sub.feed_active


# --- surges ------------------------------------------------------------------------------------


def test_a_surge_state_and_its_alert_are_written_and_read_back(store):
    from monitor.store import MatchWrite, SurgeAlertWrite, SurgeRecord, SurgeWrite

    first, second, first_fetch = poll(
        store,
        new("s1", matches=(MatchWrite("spike", ()),)),
        new("s2", item=item("s2", "Putin again"), matches=(MatchWrite("spike", ()), MatchWrite("other", ()))),
        new("s3", item=item("s3", "Putin, old news"), backfill=True, matches=(MatchWrite("spike", ()),)),
    )
    assert [m.item_id for m in store.rule_matches("spike", NOW - timedelta(hours=1))] == [first, second]
    assert store.rule_matches("spike", NOW) == []  # first seen strictly after
    assert [s.id for s in store.iter_items(after_id=first)] == [second, first_fetch]
    state = SurgeRecord("spike", "Putin", True, NOW, NOW, 5, 0.25, NOW - timedelta(days=1))
    payload = {"title": "Surge: Putin", "summary": "5 stories", "stories": [{"title": "Putin again"}]}
    alert = SurgeAlertWrite("mail", AlertStatus.PENDING, second, payload)
    store.write(Intent(NOW, surges=(SurgeWrite(state, (alert,)),)))
    assert store.surge_states() == {"spike": state}
    [due] = store.due_alerts(NOW)
    assert (due.rule, due.kind, due.payload, due.story_id, due.item_id) == ("spike", "surge", payload, 0, second)
    calmer = SurgeRecord("spike", "Putin", False, NOW + timedelta(hours=2), NOW, 5, 0.25, NOW - timedelta(days=1))
    store.write(Intent(NOW + timedelta(hours=2), surges=(SurgeWrite(calmer),)))
    assert store.surge_states()["spike"] == calmer
    assert len(store.due_alerts(NOW + timedelta(hours=2))) == 1


# --- instances and feed leases (several instances on one database) ------------------------------

LEASE = timedelta(seconds=80)


def test_a_due_feed_is_leased_to_one_owner_until_its_outcome_is_written(store):
    wire, bbc = feed_id(store, "wire"), feed_id(store, "bbc")
    store.reschedule_feed(bbc, NOW - timedelta(minutes=1), "overdue")
    assert [f.name for f in store.claim_due_feeds("one", NOW, LEASE, limit=1)] == ["bbc"]  # most overdue, within limit
    assert [f.name for f in store.claim_due_feeds("two", NOW, LEASE, limit=10)] == ["wire"]
    assert store.claim_due_feeds("one", NOW, LEASE, limit=10) == []  # its own lease too: not claimed again
    assert store.claim_due_feeds("three", NOW + LEASE - timedelta(seconds=1), LEASE, limit=10) == []
    assert store.claim_due_feeds("three", NOW, LEASE, limit=0) == []

    # A failed poll's outcome ends the lease, as an unchanged feed's does; a stored poll's (FeedWrite) too.
    store.record_feed_outcome(FeedOutcome(bbc, NOW, NOW, "error backoff (1 in a row)", "HTTP 503"))
    assert [f.name for f in store.claim_due_feeds("three", NOW, LEASE, limit=10)] == ["bbc"]
    store.record_feed_outcome(FeedOutcome(bbc, NOW, NOW, "every 10m"))
    assert [f.name for f in store.claim_due_feeds("one", NOW, LEASE, limit=10)] == ["bbc"]
    store.record_feed_outcome(FeedOutcome(bbc, NOW, NOW + timedelta(hours=1), "every 1h"))
    poll(store, new("a"), feed="wire")  # wire's poll by "two", due again in 10 minutes
    assert store.claim_due_feeds("one", NOW + timedelta(minutes=9), LEASE, limit=10) == []
    assert [f.id for f in store.claim_due_feeds("one", NOW + timedelta(minutes=10), LEASE, limit=10)] == [wire]

    # An owner that died: its lease runs out and the feed goes to another; a clean stop ends it at once.
    later = NOW + timedelta(hours=1) + LEASE
    assert {f.name for f in store.claim_due_feeds("two", later, LEASE, limit=10)} == {"wire", "bbc"}
    assert store.release_feeds("two") == 2
    assert store.release_feeds("two") == 0
    assert {f.name for f in store.claim_due_feeds("one", later, LEASE, limit=10)} == {"wire", "bbc"}


def test_instances_register_beat_and_go_and_dead_ones_are_not_listed(store):
    one = Instance("host-a:10:aa", "host-a", 10, NOW, "0.1.0")
    two = Instance("host-b:20:bb", "host-b", 20, NOW + timedelta(seconds=1), "0.1.0")
    store.heartbeat(one, NOW)
    store.heartbeat(two, NOW + timedelta(seconds=1))
    store.claim_due_feeds(two.id, NOW + timedelta(seconds=1), LEASE, limit=1)
    listed = store.instances(NOW + timedelta(seconds=2), timedelta(seconds=20))
    assert [(i.id, i.host, i.pid, i.feeds_leased) for i in listed] == [(one.id, "host-a", 10, 0), (two.id, "host-b", 20, 1)]
    assert listed[0].started_at == NOW and listed[0].heartbeat_at == NOW and listed[0].version == "0.1.0"

    store.heartbeat(two, NOW + timedelta(seconds=30))  # one stopped beating: dead after 20 s
    [alive] = store.instances(NOW + timedelta(seconds=30), timedelta(seconds=20))
    assert alive.id == two.id and alive.heartbeat_at == NOW + timedelta(seconds=30) and alive.started_at == two.started_at
    assert alive.feeds_leased == 1

    store.remove_instance(two.id)  # a clean stop: gone, and its feed free at once
    assert store.instances(NOW + timedelta(seconds=30), timedelta(seconds=20)) == []
    assert len(store.claim_due_feeds("three", NOW + timedelta(seconds=30), LEASE, limit=10)) == 2


@pytest.mark.parametrize("implementation", sorted(SHARED))
def test_two_stores_claiming_feeds_at_once_never_get_the_same_feed(implementation, tmp_path):
    with SHARED[implementation](tmp_path) as setup:
        setup.sync_feeds([FeedSpec(f"f{n}", f"http://127.0.0.1/f{n}.xml") for n in range(150)], NOW)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(2)

    def claim(owner: str) -> None:
        mine: list[int] = []
        with SHARED[implementation](tmp_path) as store:
            start.wait()
            while batch := store.claim_due_feeds(owner, NOW, LEASE, limit=4):
                mine += [feed.id for feed in batch]
                time.sleep(0.001)
            got[owner] = mine

    threads = [threading.Thread(target=claim, args=(owner,)) for owner in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(got) == {"one", "two"}
    assert not set(got["one"]) & set(got["two"])
    assert len(got["one"]) + len(got["two"]) == 150
    assert got["one"] and got["two"]  # both took part
