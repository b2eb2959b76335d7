from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from monitor.backtest import backtest, link_key, render_histogram, title_key
from monitor.items import Item, KnownEntity, Mention
from monitor.rules.match import CompiledRule, Lexicon, compile_rule
from monitor.store import StoredItem

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
) -> StoredItem:
    return StoredItem(
        id=id,
        feed=feed,
        item=Item(guid=f"g{id}", link=link, title=title, text=text),
        first_seen_at=datetime.fromisoformat(when),
        mentions=mentions,
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
        stored(1, "2026-11-20T12:00:00+00:00", "Rain", feed="wire"),
        stored(2, "2026-11-20T13:00:00+00:00", "Sun", feed="blog"),
    ]
    report = backtest(rule("tag:agency"), items, LEXICON, feed_tags=lambda feed: ("agency",) if feed == "wire" else ())
    assert [m.item_id for m in report.matches] == [1]


def test_a_story_that_several_feeds_carry_alerts_once_per_channel() -> None:
    items = [
        stored(1, "2026-11-20T08:00:00+00:00", "Putin visits Minsk", link="https://www.example.org/minsk?utm_source=rss", feed="a"),
        stored(2, "2026-11-20T09:00:00+00:00", "PUTIN VISITS MINSK!", link="http://example.org/minsk/", feed="b"),
        stored(3, "2026-11-20T09:30:00+00:00", "Putin visits Minsk", link="https://other.example/story/1", feed="c"),
        stored(4, "2026-11-20T10:00:00+00:00", "Putin meets Xi", link="https://example.org/xi", feed="a"),
        stored(5, "2026-11-20T11:00:00+00:00", "Putin meets Xi", feed="b"),  # no link: same title
        stored(6, "2026-11-20T12:00:00+00:00", "Putin speaks", feed="c"),
    ]
    report = backtest(rule("Putin"), items, LEXICON, channels=2)
    assert len(report.matches) == 6
    assert report.stories == 3
    assert report.alerts == 6
    assert [m.story_key for m in report.matches] == ["item:1", "item:1", "item:1", "item:4", "item:4", "item:6"]


def test_stories_join_through_a_shared_link_or_title() -> None:
    # 1 and 3 share nothing, but 2 shares a link with 1 and a title with 3.
    items = [
        stored(1, "2026-11-20T08:00:00+00:00", "Putin in Minsk", link="https://a.example/1"),
        stored(2, "2026-11-20T09:00:00+00:00", "Putin lands in Minsk", link="https://a.example/1"),
        stored(3, "2026-11-20T10:00:00+00:00", "Putin lands in Minsk", link="https://b.example/9"),
    ]
    report = backtest(rule("Putin"), items, LEXICON)
    assert report.stories == 1
    assert {m.story_key for m in report.matches} == {"item:1"}


def test_a_recurring_headline_is_a_new_story_after_the_window() -> None:
    items = [
        stored(1, "2026-11-01T07:00:00+00:00", "Putin: morning briefing"),
        stored(2, "2026-11-02T07:00:00+00:00", "Putin: morning briefing"),
        stored(3, "2026-11-09T07:00:00+00:00", "Putin: morning briefing"),
    ]
    report = backtest(rule("Putin"), items, LEXICON)
    assert [m.story_key for m in report.matches] == ["item:1", "item:1", "item:3"]
    assert report.stories == 2
    assert backtest(rule("Putin"), items, LEXICON, same_title_within=timedelta(days=30)).stories == 1


def test_items_without_link_or_title_are_stories_of_their_own() -> None:
    items = [
        stored(1, "2026-11-20T08:00:00+00:00", "", text="Putin"),
        stored(2, "2026-11-20T09:00:00+00:00", "", text="Putin"),
    ]
    report = backtest(rule("Putin"), items, LEXICON, channels=0)
    assert [m.story_key for m in report.matches] == ["item:1", "item:2"]
    assert (report.stories, report.alerts) == (2, 0)


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
    assert match["story"] == "item:1"
    assert match["first_seen_at"] == "2026-11-20T12:00:00+00:00"
    assert match["why"][0]["matched"] == "Putin"


LINKS = [
    ("https://www.Example.org/a/b/", "example.org/a/b"),
    ("http://example.org/a/b#comments", "example.org/a/b"),
    ("https://example.org/a?utm_source=rss&utm_medium=feed&at_medium=x&fbclid=1", "example.org/a"),
    ("https://example.org/a?id=2&page=1&utm_campaign=z", "example.org/a?id=2&page=1"),
    ("https://example.org/a?page=1&id=2", "example.org/a?id=2&page=1"),
    ("https://example.org:8080/a", "example.org:8080/a"),
    ("https://example.org:443/a", "example.org/a"),
    ("https://example.org/A", "example.org/A"),  # paths can be case-sensitive
    ("/relative/only", None),
    ("https://example.org:99999/a", None),
    ("", None),
    (None, None),
]


@pytest.mark.parametrize(("link", "expected"), LINKS)
def test_link_keys(link: str | None, expected: str | None) -> None:
    assert link_key(link) == expected


def test_title_keys_ignore_case_accents_and_punctuation() -> None:
    assert title_key("Zelenskyy: “Peace” talks — Résumé!") == title_key("zelenskyy peace talks resume")
    assert title_key("  —  ") is None


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


def test_naive_times_are_taken_as_utc() -> None:
    items = [stored(1, "2026-11-20T23:30:00", "Putin")]
    report = backtest(rule("Putin"), items, LEXICON, until=datetime(2026, 11, 21, 1, tzinfo=timezone(timedelta(hours=2))))
    assert report.per_day == {date(2026, 11, 20): 1}
