"""What the dashboard reads from the store: alerts by story, entity counts over time, items per day per feed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from monitor.items import FeedSpec, Item, Mention
from monitor.store import AlertStatus, AlertWrite, FeedWrite, Intent, ItemWrite, SqliteStorage, StoryJoin

NOW = datetime(2026, 11, 27, 12, 30, tzinfo=UTC)
PUTIN = Mention("Putin", "Vladimir Putin", "PERSON", "title", 0, 5)
KYIV = Mention("Kyiv", "Kyiv", "GPE", "title", 6, 10)


@pytest.fixture
def store(tmp_path):
    with SqliteStorage.open(tmp_path / "db.sqlite") as storage:
        storage.sync_feeds([FeedSpec("wire", "https://wire.example/"), FeedSpec("post", "https://post.example/")], NOW)
        yield storage


def poll(store, feed: str, guid: str, at: datetime, *, mentions=(), alerts=(), join=None) -> int:
    feed_id = store.feed(feed).id
    item = Item(guid=guid, link=f"https://{feed}.example/{guid}", title="Putin Kyiv visit", text="text")
    write = ItemWrite(feed_id, item, mentions=mentions, alerts=alerts, join=join)
    [item_id] = store.write(
        Intent(at, (write,), FeedWrite(feed_id, at, at + timedelta(hours=1), "1h", None, None, None))
    )
    return item_id


def test_alerts_come_grouped_by_story_newest_first_with_every_outlet(store):
    first = poll(store, "wire", "a", NOW - timedelta(hours=2), alerts=(AlertWrite("r", "mail", AlertStatus.PENDING),))
    poll(store, "post", "a2", NOW - timedelta(hours=1), join=StoryJoin(story_id=first),
         alerts=(AlertWrite("r2", "mail", AlertStatus.SUPPRESSED, reason="repeat"),))  # fmt: skip
    other = poll(store, "wire", "b", NOW, alerts=(AlertWrite("r", "mail", AlertStatus.PENDING),))
    stories = store.story_alerts()
    assert [story.story_id for story in stories] == [other, first]
    assert [alert.rule for alert in stories[1].alerts] == ["r2", "r"]  # newest first within a story
    assert stories[1].outlet_links == (("wire", "https://wire.example/a"), ("post", "https://post.example/a2"))
    assert [s.story_id for s in store.story_alerts(status=AlertStatus.SUPPRESSED)] == [first]
    assert len(store.story_alerts(limit=1)) == 1


def test_entity_counts_per_hour_and_day_and_the_items_behind_them(store):
    poll(store, "wire", "a", NOW - timedelta(hours=2, minutes=10), mentions=(PUTIN, KYIV))
    poll(store, "post", "b", NOW - timedelta(hours=2, minutes=5), mentions=(PUTIN,))
    newest = poll(store, "wire", "c", NOW, mentions=(PUTIN,))
    poll(store, "wire", "old", NOW - timedelta(days=3), mentions=(KYIV,))
    since = NOW - timedelta(days=1)
    top = store.top_entities(since)
    assert [(e.name, e.type, e.items) for e in top] == [("Vladimir Putin", "PERSON", 3), ("Kyiv", "GPE", 1)]
    assert [e.name for e in store.top_entities(since, types=("GPE", "LOC"))] == ["Kyiv"]
    hours = store.entity_mentions([("Vladimir Putin", "PERSON")], since, bucket="hour")
    assert hours == {
        ("Vladimir Putin", "PERSON"): {datetime(2026, 11, 27, 10, tzinfo=UTC): 2, NOW.replace(minute=0): 1}
    }
    days = store.entity_mentions([("Kyiv", "GPE")], NOW - timedelta(days=7), bucket="day")
    assert days == {("Kyiv", "GPE"): {datetime(2026, 11, 24, tzinfo=UTC): 1, datetime(2026, 11, 27, tzinfo=UTC): 1}}
    items = store.entity_items("Vladimir Putin", "PERSON", since, limit=2)
    assert [item.item_id for item in items][0] == newest and len(items) == 2
    assert store.entity_items("Vladimir Putin", "ORG", since) == []


def test_items_per_day_per_feed_and_the_newest_items_cut(store):
    poll(store, "wire", "a", NOW - timedelta(days=1))
    poll(store, "wire", "b", NOW)
    poll(store, "post", "c", NOW)
    assert store.feed_items_per_day(NOW - timedelta(days=7)) == {
        "wire": {date(2026, 11, 26): 1, date(2026, 11, 27): 1},
        "post": {date(2026, 11, 27): 1},
    }
    store.set_feed_health("post", "silent")
    assert store.feed_health_states() == {"wire": "ok", "post": "silent"}
    assert store.first_seen_of_newest(3) == NOW - timedelta(days=1)
    assert store.first_seen_of_newest(4) is None
