"""The decision of a poll, on plain data with a clock passed in: no store, no network, no model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import OTHER_TEXT, REWRITE_TEXT, WIRE_TEXT

from monitor.alerts.pacing import RulePolicy
from monitor.decide import (
    Analysed,
    CandidatePool,
    Enrichable,
    Placed,
    RulePlan,
    decide_enrichment,
    decide_poll,
    fresh_items,
    new_this_week,
    replay_stories,
    story_info,
    summarise,
)
from monitor.items import Item
from monitor.store.records import (
    AlertHistory,
    AlertStatus,
    FeedWrite,
    KnownItem,
    Snapshot,
    StoryCandidate,
    StoryJoin,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=3)
WIRE, REWRITE, OTHER = WIRE_TEXT, REWRITE_TEXT, OTHER_TEXT
PLANS = {"xi-putin": RulePlan(("mail", "slack"))}


def item(guid: str, text: str = WIRE, title: str = "Xi and Putin talk", link: str | None = None) -> Item:
    return Item(guid=guid, link=link or f"https://example.org/{guid}", title=title, text=text, published_at=NOW)


def analysed(one: Item, *rules: str) -> Analysed:
    return Analysed(one, matches=tuple((rule, ()) for rule in rules), story=story_info(one))


def decide(batch, snapshot=None, plans=PLANS, now=NOW, backfill=False):
    feed = FeedWrite(1, now, now + timedelta(minutes=10), "every 10m", None, None, "Wire")
    return decide_poll(
        1, batch, snapshot or Snapshot(), plans, now=now, feed=feed, backfill=backfill, story_window=WINDOW, threshold=0.45
    )


def test_fresh_items_are_new_or_changed_and_listed_once():
    a, b, c = item("a"), item("b"), item("c")
    known = {"a": KnownItem(1, a.content_hash, 1), "b": KnownItem(2, "old hash", 2)}
    assert fresh_items([a, b, c, c], known) == [b, c]
    # Only new items published within the week count towards the feed's rhythm.
    old = Item(guid="d", link=None, title="t", text="x", published_at=NOW - timedelta(days=8))
    assert new_this_week([b, c, old], known, NOW) == 1


def test_a_first_fetch_is_stored_unenriched_and_alerts_nobody():
    intent = decide([analysed(item("a"), "xi-putin")], backfill=True)
    [write] = intent.items
    assert (write.enriched, write.backfill, write.alerts, write.matches, write.join) == (False, True, (), (), None)
    assert intent.feed is not None and intent.feed.title == "Wire"


def test_each_match_alerts_each_channel_of_its_rule():
    intent = decide([analysed(item("a"), "xi-putin", "unknown-rule")])
    [write] = intent.items
    assert [(a.rule, a.channel, a.status) for a in write.alerts] == [
        ("xi-putin", "mail", AlertStatus.PENDING),
        ("xi-putin", "slack", AlertStatus.PENDING),
    ]
    assert [m.rule for m in write.matches] == ["xi-putin", "unknown-rule"]  # a match is history even without a rule
    assert summarise(intent) == {"items": 1, "matches": 2, "alerts": 2, "suppressed": 0}


def test_two_copies_of_a_story_in_one_batch_alert_once():
    intent = decide([analysed(item("reuters"), "xi-putin"), analysed(item("ap", REWRITE), "xi-putin")])
    first, copy = intent.items
    assert first.join is None
    assert copy.join == StoryJoin(batch_index=0, reason="text")
    assert {a.status for a in first.alerts} == {AlertStatus.PENDING}
    assert {a.status for a in copy.alerts} == {AlertStatus.SUPPRESSED}
    assert all("already alerted 0 s ago" in a.reason for a in copy.alerts)


def test_a_copy_joins_a_stored_story_and_is_suppressed_after_its_alert():
    original = item("reuters")
    info = story_info(original)
    candidate = StoryCandidate(40, 41, info.link_key, info.fingerprint, NOW - timedelta(hours=2))
    history = AlertHistory(
        instant={("xi-putin", "mail"): (NOW - timedelta(hours=2),)},
        last_for_story={("xi-putin", "mail", 40): NOW - timedelta(hours=2)},
    )
    snapshot = Snapshot(candidates={key: (candidate,) for key in info.keys}, history=history)
    [write] = decide([analysed(item("ap", REWRITE), "xi-putin")], snapshot).items
    assert write.join == StoryJoin(story_id=40, reason="text")
    by_channel = {a.channel: a for a in write.alerts}
    assert by_channel["mail"].status == AlertStatus.SUPPRESSED and "2 h ago" in by_channel["mail"].reason
    assert by_channel["slack"].status == AlertStatus.PENDING  # that channel never had the story


def test_a_different_story_about_the_same_people_alerts():
    batch = [analysed(item("a"), "xi-putin"), analysed(item("b", OTHER + " Xi was not mentioned."), "xi-putin")]
    first, other = decide(batch).items
    assert other.join is None and {a.status for a in other.alerts} == {AlertStatus.PENDING}


def test_a_burst_counts_against_its_own_max_per_hour():
    plans = {"xi-putin": RulePlan(("mail",), RulePolicy(max_per_hour=2))}
    batch = [analysed(item(f"n{n}", f"Update {n}: topic {n} only.", f"Update {n}"), "xi-putin") for n in range(4)]
    history = AlertHistory(instant={("xi-putin", "mail"): ()})
    intent = decide(batch, Snapshot(history=history), plans)
    statuses = [write.alerts[0].status for write in intent.items]
    assert statuses == [AlertStatus.PENDING, AlertStatus.PENDING, AlertStatus.HELD, AlertStatus.HELD]
    held = intent.items[2].alerts[0]
    assert held.release_at == NOW + timedelta(hours=1) and "max_per_hour (2)" in held.reason


def test_earlier_alerts_of_the_hour_count_and_age_out():
    plans = {"xi-putin": RulePlan(("mail",), RulePolicy(max_per_hour=1))}
    history = AlertHistory(instant={("xi-putin", "mail"): (NOW - timedelta(minutes=59),)})
    [write] = decide([analysed(item("a"), "xi-putin")], Snapshot(history=history), plans).items
    assert write.alerts[0].status == AlertStatus.HELD
    later = NOW + timedelta(minutes=2)
    [write] = decide([analysed(item("a"), "xi-putin")], Snapshot(history=history), plans, now=later).items
    assert write.alerts[0].status == AlertStatus.PENDING


def test_a_digest_rule_holds_until_its_schedule():
    plans = {"xi-putin": RulePlan(("mail",), RulePolicy(mode="digest", digest_cron="0 18 * * *"))}
    [write] = decide([analysed(item("a"), "xi-putin")], plans=plans).items
    [alert] = write.alerts
    assert (alert.status, alert.release_at) == (AlertStatus.HELD, NOW.replace(hour=18))


def test_a_changed_item_keeps_its_story_and_does_not_alert_a_channel_twice():
    changed = item("a", WIRE + " Updated.")
    snapshot = Snapshot(known={"a": KnownItem(7, "old", 5)}, alerted_items=frozenset({(7, "xi-putin", "mail")}))
    [write] = decide([analysed(changed, "xi-putin")], snapshot).items
    assert (write.item_id, write.join) == (7, None)
    [alert] = write.alerts  # only slack, which it had not alerted yet
    assert alert.channel == "slack" and alert.status == AlertStatus.PENDING


def test_the_candidate_pool_hands_out_the_newest_per_key_within_the_window():
    pool = CandidatePool(per_key=2)
    for n in range(4):
        pool.add(["k"], StoryCandidate(n, n, None, None, NOW + timedelta(minutes=n)))
    assert [c.item_id for c in pool.candidates(["k"], NOW)] == [2, 3]
    assert [c.item_id for c in pool.candidates(["k"], NOW + timedelta(minutes=3))] == [3]
    assert pool.candidates(["other"], NOW) == []


def test_a_crowded_key_keeps_only_what_can_still_be_chosen():
    pool = CandidatePool(per_key=2)
    for n in range(100):  # arriving out of order, as a snapshot's rows may
        minute = (n * 37) % 100
        pool.add(["k"], StoryCandidate(minute, minute, None, None, NOW + timedelta(minutes=minute)))
    assert [c.item_id for c in pool.candidates(["k"], NOW)] == [98, 99]
    assert len(pool._by_key["k"]) <= 8  # a replay of a long history stays linear


def test_enrichment_places_items_in_stories_without_alerts():
    first, copy = item("reuters"), item("ap", REWRITE)
    batch = [
        Enrichable(1, 1, NOW, analysed(first, "xi-putin")),
        Enrichable(2, 2, NOW, analysed(copy, "xi-putin")),
    ]
    intent = decide_enrichment(batch, Snapshot(), now=NOW + timedelta(seconds=5), story_window=WINDOW, threshold=0.45)
    assert intent.feed is None and intent.alerts == ()
    assert [w.item_id for w in intent.items] == [1, 2]
    assert intent.items[1].join == StoryJoin(batch_index=0, reason="text")
    assert all(w.enriched and w.matches for w in intent.items)


def test_a_replay_places_items_in_the_stories_a_live_decision_chose():
    items = [item("a"), item("b", REWRITE), item("c", OTHER), item("d", link="https://example.org/a")]
    intent = decide([analysed(one) for one in items])
    live = [0, 0, 2, 0]  # the batch index of each item's story
    assert [w.join.batch_index if w.join else i for i, w in enumerate(intent.items)] == live
    placed = [Placed(10 + i, NOW, story_info(one)) for i, one in enumerate(items)]
    assert replay_stories(placed, story_window=WINDOW, threshold=0.45) == {10: 10, 11: 10, 12: 12, 13: 10}


def test_an_item_of_a_first_fetch_that_changed_before_enrichment_is_placed_in_a_story_now():
    original = item("reuters")
    info = story_info(original)
    candidate = StoryCandidate(40, 40, info.link_key, info.fingerprint, NOW - timedelta(hours=1))
    snapshot = Snapshot(
        known={"ap": KnownItem(9, "old", 9, placed=False)}, candidates={key: (candidate,) for key in info.keys}
    )
    [write] = decide([analysed(item("ap", REWRITE), "xi-putin")], snapshot).items
    assert write.item_id == 9 and write.join == StoryJoin(story_id=40, reason="text")
