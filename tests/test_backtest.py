from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from conftest import OTHER_TEXT, REWRITE_TEXT, WIRE_TEXT, write_config

from monitor.alerts.pacing import RulePolicy
from monitor.assembly import load_setup
from monitor.backtest import backtest, render_histogram
from monitor.decide import story_info
from monitor.items import Item, KnownEntity, Mention
from monitor.pipeline import record_poll
from monitor.rules.document import Lexicon
from monitor.rules.evaluate import CompiledRule, compile_rule
from monitor.store import StoredItem

WIRE, REWRITE, OTHER = WIRE_TEXT, REWRITE_TEXT, OTHER_TEXT
LEXICON = Lexicon.from_entities([KnownEntity("Vladimir Putin", "PERSON", ("Putin",))])


def stored(
    id: int,
    when: str,
    title: str,
    *,
    text: str = "",
    link: str | None = None,
    feed: str = "wire",
    mentions: tuple[Mention, ...] = (),
    feed_tags: tuple[str, ...] = (),
    backfill: bool = False,
) -> StoredItem:
    item = Item(guid=f"g{id}", link=link, title=title, text=text)
    return StoredItem(
        id=id,
        feed=feed,
        item=item,
        first_seen_at=datetime.fromisoformat(when),
        mentions=mentions,
        story=story_info(item),
        backfill=backfill,
        feed_tags=feed_tags,
    )


def rule(query: str) -> CompiledRule:
    return compile_rule("r", query, LEXICON)


def test_counts_matches_per_utc_day_with_quiet_days_as_zero() -> None:
    items = [
        stored(1, "2026-11-18T08:00:00+00:00", "Putin in Minsk"),
        stored(2, "2026-11-18T21:00:00+00:00", "Putin in Kazan"),
        stored(3, "2026-11-20T12:00:00+00:00", "Putin in Tula"),
        stored(4, "2026-11-20T13:00:00+00:00", "Rain in Tula"),
        stored(5, "2026-11-21T23:30:00-05:00", "Rain again"),  # 04:30 UTC on the 22nd
    ]
    report = backtest(rule("Putin"), items, LEXICON)
    assert report.scanned == 5
    assert report.per_day == {
        date(2026, 11, 18): 2,
        date(2026, 11, 19): 0,
        date(2026, 11, 20): 1,
        date(2026, 11, 21): 0,
        date(2026, 11, 22): 0,
    }


def test_the_period_asked_about_widens_the_days() -> None:
    items = [stored(1, "2026-11-20T12:00:00+00:00", "Putin in Tula")]
    report = backtest(
        rule("Putin"),
        items,
        LEXICON,
        since=datetime(2026, 11, 18, 9, tzinfo=UTC),
        until=datetime(2026, 11, 21, 9, tzinfo=UTC),
    )
    assert list(report.per_day.values()) == [0, 0, 1, 0]
    assert min(report.per_day) == date(2026, 11, 18)


def test_no_items_no_days() -> None:
    report = backtest(rule("Putin"), [], LEXICON)
    assert (report.scanned, report.matches, report.per_day, report.alerts) == (0, [], {}, 0)


def test_matches_carry_their_explanation_and_come_oldest_first() -> None:
    body = "Talks with Vladimir Putin"
    items = [
        stored(2, "2026-11-20T12:00:00+00:00", "Second", text="Putin again"),
        stored(
            1,
            "2026-11-19T12:00:00+00:00",
            "First",
            text=body,
            mentions=(Mention("Vladimir Putin", "Vladimir Putin", "PERSON", "body", 11, 25),),
        ),
    ]
    report = backtest(rule("person:Putin OR Putin"), items, LEXICON)
    assert [m.item_id for m in report.matches] == [1, 2]
    first = report.matches[0]
    assert (first.feed, first.item.title) == ("wire", "First")
    assert {(hit.term, hit.matched) for hit in first.hits} == {
        ("person:Putin", "Vladimir Putin"),
        ("Putin", "Vladimir Putin"),
    }


def test_rules_see_feed_tags_as_the_pipeline_does() -> None:
    items = [
        stored(1, "2026-11-20T12:00:00+00:00", "Rain", feed="wire", feed_tags=("agency",)),
        stored(2, "2026-11-20T13:00:00+00:00", "Sun", feed="blog"),
    ]
    report = backtest(rule("tag:agency"), items, LEXICON)
    assert [m.item_id for m in report.matches] == [1]


def test_a_story_that_several_feeds_carry_alerts_once_per_channel() -> None:
    items = [
        stored(1, "2026-11-20T08:00:00+00:00", "Putin visits Minsk", text=WIRE, link="https://www.example.org/minsk?utm_source=rss", feed="a"),
        stored(2, "2026-11-20T09:00:00+00:00", "Putin in Minsk", text="Short.", link="http://example.org/minsk/", feed="b"),
        stored(3, "2026-11-20T09:30:00+00:00", "Putin and Lukashenko meet", text=REWRITE, link="https://other.example/1", feed="c"),
        stored(4, "2026-11-20T10:00:00+00:00", "Putin signs budget", text=OTHER, link="https://example.org/budget", feed="a"),
    ]
    report = backtest(rule("Putin"), items, LEXICON, channels=("mail", "slack"))
    assert [m.story_id for m in report.matches] == [1, 1, 1, 4]
    assert (report.stories, report.alerts, report.suppressed) == (2, 4, 4)


def test_the_rules_pacing_is_replayed_in_the_order_items_arrived() -> None:
    items = [stored(n, f"2026-11-20T08:{n:02d}:00+00:00", f"Putin update {n}", link=f"https://e.org/{n}") for n in range(1, 5)]
    report = backtest(rule("Putin"), items, LEXICON, policy=RulePolicy(max_per_hour=2))
    assert (report.stories, report.alerts, report.held, report.suppressed) == (4, 4, 2, 0)
    digest = backtest(rule("Putin"), items, LEXICON, policy=RulePolicy(mode="digest", digest_cron="0 18 * * *"))
    assert (digest.alerts, digest.held) == (4, 4)


def test_items_of_a_first_fetch_alert_nobody() -> None:
    items = [
        stored(1, "2026-11-20T08:00:00+00:00", "Putin in Minsk", link="https://e.org/1", backfill=True),
        stored(2, "2026-11-20T09:00:00+00:00", "Putin in Kazan", link="https://e.org/2"),
    ]
    report = backtest(rule("Putin"), items, LEXICON, first_fetch_alerts=False)
    assert (len(report.matches), report.stories, report.alerts, report.backfill) == (2, 2, 1, 1)
    as_news = backtest(rule("Putin"), items, LEXICON)
    assert (as_news.alerts, as_news.backfill) == (2, 1)


def test_items_before_the_period_are_stories_to_join_not_matches() -> None:
    items = [
        stored(1, "2026-11-19T20:00:00+00:00", "Putin visits Minsk", text=WIRE, link="https://e.org/minsk"),
        stored(2, "2026-11-20T09:00:00+00:00", "Putin in Minsk", text=REWRITE, link="https://f.org/minsk"),
    ]
    report = backtest(rule("Putin"), items, LEXICON, since=datetime(2026, 11, 20, tzinfo=UTC))
    assert report.scanned == 1 and [m.story_id for m in report.matches] == [1]


def test_items_are_placed_in_the_order_the_store_placed_them() -> None:
    # Item 2 was stored first but placed (enriched) after item 3: item 3 began the story.
    items = [
        stored(2, "2026-11-20T08:00:00+00:00", "Putin visits Minsk", text=WIRE, link="https://e.org/a"),
        stored(3, "2026-11-20T08:00:05+00:00", "Putin in Minsk", text=REWRITE, link="https://f.org/b"),
    ]
    assert [m.story_id for m in backtest(rule("Putin"), items, LEXICON).matches] == [2, 2]
    placed_later = backtest(rule("Putin"), items, LEXICON, join_order={2: 50, 3: 10})
    assert [m.story_id for m in placed_later.matches] == [3, 3]


def test_rules_test_counts_exactly_the_stories_and_alerts_the_store_recorded(tmp_path) -> None:
    """Replay a real history (real store, real decisions, a first fetch enriched late) and compare."""
    from monitor.decide import Analysed, Enrichable, decide_enrichment, story_info
    from monitor.store import AlertStatus, FeedWrite, open_storage
    from monitor.store.records import Snapshot

    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": name, "url": f"http://127.0.0.1/{name}.xml"} for name in ("reuters", "ap", "afp")],
        channels={"mail": {"url": "json://127.0.0.1:9/x"}},
        rules=[{"name": "putin", "query": "Putin", "notify": ["mail", "console"], "cooldown": "6h"}],
    )
    setup = load_setup(directory)
    texts = [WIRE, REWRITE, OTHER, OTHER + " Lawmakers approved it.", "Putin spoke.", WIRE + " More details."]
    start = datetime(2026, 11, 20, 6, tzinfo=UTC)
    with open_storage(tmp_path / "state.db") as store:
        store.sync_feeds(setup.config.feed_specs(), start)
        feeds = {feed.name: feed.id for feed in store.feeds()}
        # afp's first fetch: stored at once, placed in stories only later.
        first = [Item(guid=f"afp-{n}", link=f"https://afp.example/{n}", title=f"Putin {n}", text=t) for n, t in enumerate(texts[:3])]
        afp = [Analysed(one) for one in first]
        record_poll(store, setup, feeds["afp"], afp, now=start, feed=FeedWrite(feeds["afp"], start, start, "t", None, None, None), backfill=True)
        serial = 0
        for hour in range(12):
            now = start + timedelta(minutes=20 * hour + 1)
            for feed in ("reuters", "ap"):
                serial += 1
                text = texts[(serial * 5 + hour) % len(texts)]
                one = Item(guid=f"{feed}-{serial}", link=f"https://{feed}.example/{serial % 7}", title=f"Putin update {serial % 4}", text=text)
                batch = [Analysed(one, matches=(("putin", ()),), story=story_info(one))]
                record_poll(store, setup, feeds[feed], batch, now=now, feed=FeedWrite(feeds[feed], now, now, "t", None, None, None))
            if hour == 0:  # the first fetch is enriched after the first new items arrived
                pending = store.unenriched_items()
                batch = [Enrichable(s.id, feeds["afp"], s.first_seen_at, Analysed(s.item, matches=(("putin", ()),), story=story_info(s.item))) for s in pending]
                keys = {k for e in batch for k in e.analysed.story.keys}
                with store.transaction():
                    snap = store.snapshot(feed_id=None, item_keys=(), story_keys=keys, since=start - timedelta(days=3), pairs=(), now=now)
                    assert isinstance(snap, Snapshot)
                    store.write(decide_enrichment(batch, snap, now=now, story_window=timedelta(days=3), threshold=0.45))
        history = list(store.iter_items())
        plan = setup.rulebook.plans["putin"]
        report = backtest(
            setup.rulebook.compiled["putin"], history, setup.rulebook.lexicon,
            channels=plan.channels, policy=plan.policy, join_order=store.join_order([s.id for s in history]),
            first_fetch_alerts=False,
        )  # fmt: skip
        stored_stories = {s.id: s.story_id for s in history}
        assert report.story_of == stored_stories
        assert len(set(stored_stories.values())) < len(stored_stories)  # some items did join others' stories
        recorded = store.list_alerts(limit=1000)
        assert report.alerts == sum(1 for a in recorded if a.status != AlertStatus.SUPPRESSED)
        assert report.suppressed == sum(1 for a in recorded if a.status == AlertStatus.SUPPRESSED) > 0
        assert report.stories == len({s.story_id for s in history})
        assert report.backfill == 3


def test_the_sample_is_the_most_recent_matches_newest_first() -> None:
    items = [stored(i, f"2026-11-{10 + i}T12:00:00+00:00", f"Putin {i}") for i in range(1, 6)]
    report = backtest(rule("Putin"), items, LEXICON)
    assert [m.item_id for m in report.sample(3)] == [5, 4, 3]
    assert [m.item_id for m in report.sample(10)] == [5, 4, 3, 2, 1]
    assert report.sample(0) == []


def test_the_report_as_json() -> None:
    items = [stored(1, "2026-11-20T12:00:00+00:00", "Putin", link="https://example.org/p")]
    data = backtest(rule("Putin"), items, LEXICON).to_dict(sample=5)
    assert data["per_day"] == {"2026-11-20": 1}
    assert (data["scanned"], data["matched"], data["stories"], data["alerts"]) == (1, 1, 1, 1)
    [match] = data["sample"]
    assert match["story"] == 1
    assert match["first_seen_at"] == "2026-11-20T12:00:00+00:00"
    assert match["why"][0]["matched"] == "Putin"


def test_histogram_scales_bars_to_the_busiest_day() -> None:
    per_day = {date(2026, 11, 20): 12, date(2026, 11, 18): 3, date(2026, 11, 19): 0, date(2026, 11, 21): 1}
    assert render_histogram(per_day, width=12) == [
        "2026-11-18   3 ███",
        "2026-11-19   0",
        "2026-11-20  12 ████████████",
        "2026-11-21   1 █",
    ]


def test_histogram_gives_every_non_empty_day_a_block() -> None:
    lines = render_histogram({date(2026, 11, 20): 1000, date(2026, 11, 21): 1}, width=10)
    assert lines == ["2026-11-20  1000 ██████████", "2026-11-21     1 █"]


def test_histogram_edge_cases() -> None:
    assert render_histogram({}) == []
    assert render_histogram({date(2026, 11, 20): 0}) == ["2026-11-20  0"]
    with pytest.raises(ValueError):
        render_histogram({date(2026, 11, 20): 1}, width=0)
