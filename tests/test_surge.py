"""Surge detection, pure: points in, verdicts out, with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.rules.surge import (
    Point,
    SurgeSpec,
    SurgeState,
    check,
    describe,
    lowest,
    measure,
    replay,
    surfaced,
    top_stories,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
SPEC = SurgeSpec(window=HOUR, baseline=timedelta(days=7), factor=4, min_count=5)
WATCHED = T0 - timedelta(days=8)


def quiet_week(now: datetime, every: timedelta = timedelta(hours=4)) -> list[Point]:
    """One new story every few hours over the week before ``now``'s window."""
    points, moment, n = [], now - timedelta(days=7) + every, 0
    while moment <= now - HOUR:
        n += 1
        points.append(Point(n, n, moment, "wire", f"quiet {n}"))
        moment += every
    return points


def burst(start: datetime, count: int, first_id: int = 1000, gap: timedelta = timedelta(minutes=5)) -> list[Point]:
    return [Point(first_id + i, first_id + i, start + gap * i, f"feed{i}", f"burst {i}") for i in range(count)]


def test_a_burst_over_a_quiet_week_fires_once() -> None:
    now = T0
    points = quiet_week(now) + burst(now - timedelta(minutes=40), 6)
    verdict = check(SurgeState("r", "q"), points, SPEC, now, WATCHED)
    assert verdict.fire
    assert verdict.measure.count == 6
    assert 0.2 < verdict.measure.usual < 0.3  # one story per 4 h
    assert verdict.state.surging and verdict.state.fired_at == now
    # The burst goes on: no second alert.
    later = now + timedelta(minutes=10)
    more = points + burst(later - timedelta(minutes=1), 2, first_id=2000)
    again = check(verdict.state, more, SPEC, later, WATCHED)
    assert not again.fire and again.state.surging


def test_min_count_is_respected_even_far_above_the_usual_rate() -> None:
    points = burst(T0 - timedelta(minutes=30), 4)  # nothing usual at all, but only 4 stories
    verdict = check(SurgeState("r", "q"), points, SPEC, T0, WATCHED)
    assert verdict.measure.usual == 0 and verdict.measure.count == 4
    assert not verdict.fire


def test_a_slow_rise_that_never_reaches_the_factor_does_not_fire() -> None:
    # Usual: 3 stories an hour all week; the last hour has 10 (3.3x < 4x).
    points, n = [], 0
    for hour in range(1, 7 * 24):
        for minute in (5, 25, 45):
            n += 1
            points.append(Point(n, n, T0 - timedelta(days=7) + hour * HOUR + timedelta(minutes=minute)))
    points = [p for p in points if p.seen_at <= T0 - HOUR] + burst(
        T0 - timedelta(minutes=55), 10, gap=timedelta(minutes=5)
    )
    verdict = check(SurgeState("r", "q"), points, SPEC, T0, WATCHED)
    assert verdict.measure.count == 10
    assert not verdict.fire
    assert verdict.measure.level > 10


def test_one_story_run_by_many_outlets_counts_once() -> None:
    syndicated = [Point(100 + i, 100, T0 - timedelta(minutes=30 - i), f"outlet{i}") for i in range(30)]
    verdict = check(SurgeState("r", "q"), syndicated, SPEC, T0, WATCHED)
    assert verdict.measure.count == 1 and not verdict.fire


def test_a_story_counts_in_the_window_it_surfaced_in() -> None:
    old_story = [Point(1, 1, T0 - 3 * HOUR), Point(2, 1, T0 - timedelta(minutes=10))]  # a late copy
    assert measure(old_story, SPEC, T0, WATCHED).count == 0


def test_falls_back_then_bursts_again_fires_a_second_time() -> None:
    points = quiet_week(T0) + burst(T0 - timedelta(minutes=40), 6)
    first = check(SurgeState("r", "q"), points, SPEC, T0, WATCHED)
    assert first.fire
    # Three hours later the burst has left the window; a new one arrives.
    later = T0 + 3 * HOUR
    points += burst(later - timedelta(minutes=30), 6, first_id=3000)
    second = check(first.state, points, SPEC, later, WATCHED)
    assert second.rearmed and second.fire


def test_a_steady_rate_at_the_level_does_not_refire_on_each_dip() -> None:
    # Five stories an hour, evenly spaced: each arrival comes just after the oldest left the window.
    points = quiet_week(T0 - 2 * HOUR)
    state = SurgeState("r", "q")
    fired = 0
    moment = T0 - 2 * HOUR
    n = 5000
    while moment <= T0 + 3 * HOUR:
        n += 1
        points.append(Point(n, n, moment))
        verdict = check(state, points, SPEC, moment, WATCHED)
        state = verdict.state
        fired += verdict.fire
        moment += timedelta(minutes=12)
    assert fired == 1


def test_no_baseline_history_no_surge() -> None:
    points = burst(T0 - timedelta(minutes=30), 8)
    verdict = check(SurgeState("r", "q"), points, SPEC, T0, T0 - 2 * HOUR)
    assert not verdict.measure.enough_history and not verdict.fire
    assert not check(SurgeState("r", "q"), points, SPEC, T0, None).fire


def test_lowest_sees_a_dip_between_checks() -> None:
    first = surfaced([Point(1, 1, T0 - timedelta(minutes=50)), Point(2, 2, T0 - timedelta(minutes=40))])
    # At T0 both are in the window; by T0 + 15 min the first has left; by T0 + 25 min both have.
    assert lowest(first, HOUR, T0, T0 + timedelta(minutes=15)) == 1
    assert lowest(first, HOUR, T0, T0 + timedelta(minutes=25)) == 0
    assert lowest(first, HOUR, T0, T0 + timedelta(minutes=5)) == 2


def test_replay_finds_each_surge_once() -> None:
    points = quiet_week(T0) + burst(T0 - timedelta(minutes=40), 8) + burst(T0 + 5 * HOUR, 7, first_id=4000)
    firings = replay(points, SPEC, WATCHED)
    assert [f.measure.count for f in firings] == [5, 5]
    assert firings[0].measure.at == T0 - timedelta(minutes=40) + timedelta(minutes=20)
    assert firings[0].stories and firings[0].stories[0].first.title.startswith("burst")


def test_top_stories_rank_by_outlets_and_describe_reads_well() -> None:
    points = [
        Point(1, 1, T0 - timedelta(minutes=30), "a", "Lone story"),
        Point(2, 2, T0 - timedelta(minutes=20), "a", "Big story", "https://a.example/2"),
        Point(3, 2, T0 - timedelta(minutes=10), "b", "Big story", "https://b.example/2"),
    ]
    top = top_stories(points, surfaced(points), T0 - HOUR, T0)
    assert [s.first.title for s in top] == ["Big story", "Lone story"]
    assert top[0].outlets == (("a", "https://a.example/2"), ("b", "https://b.example/2"))
    found = measure(quiet_week(T0) + burst(T0 - timedelta(minutes=30), 6), SPEC, T0, WATCHED)
    assert describe(found, SPEC) == "6 stories in the last 1 h; usual 0.25 per 1 h over 7 d — 24x"


def test_a_new_surge_within_the_cooldown_alerts_nobody_and_one_after_it_fires() -> None:
    spec = SurgeSpec(window=HOUR, baseline=timedelta(days=7), factor=4, min_count=5, cooldown=6 * HOUR)
    points = quiet_week(T0) + burst(T0 - timedelta(minutes=40), 6)
    first = check(SurgeState("r", "q"), points, spec, T0, WATCHED)
    assert first.fire and first.quieted is None
    # Fallen back and surging again 3 h later: a surge, within the cooldown.
    later = T0 + 3 * HOUR
    points += burst(later - timedelta(minutes=30), 6, first_id=3000)
    second = check(first.state, points, spec, later, WATCHED)
    assert second.rearmed and not second.fire
    assert second.quieted == "cooldown (6 h): last surge alerted 3 h ago"
    assert second.state.surging and second.state.fired_at == T0  # counted from the surge that alerted
    # It goes on past the cooldown: still the same surge, no alert.
    on = later + timedelta(minutes=20)
    points += burst(on - timedelta(minutes=5), 2, first_id=4000)
    assert not check(second.state, points, spec, on, WATCHED).fire
    # A new surge 7 h after the one that alerted fires.
    last = T0 + 7 * HOUR
    points += burst(last - timedelta(minutes=30), 6, first_id=5000)
    third = check(second.state, points, spec, last, WATCHED)
    assert third.rearmed and third.fire and third.quieted is None
    # replay (rules test) applies the cooldown the same way.
    assert len(replay(points, spec, WATCHED)) == len(replay(points, SPEC, WATCHED)) - 1
