"""Surges: when a query's stories suddenly come much faster than usual. Pure: time is passed in.

What counts is **stories**, not items: one story run by thirty outlets is one story
(the store's story joins decide which items are one story). A story counts in the
window it *surfaced* in: the time its first matching item was first seen. So a
breaking story whose copies keep arriving for hours counts once, in the hour it
broke, and a surge is "many new stories about X", which is what a desk wants to hear.

    count   = stories that surfaced in the window (now - window, now]
    usual   = stories that surfaced in the baseline before it, per window:
              (now - baseline, now - window] / ((baseline - window) / window)
    level   = max(min_count, factor * usual)       fire when count >= level

Firing needs a new matching item (the count only grows when one arrives), so
checking when matching items arrive is enough; nothing fires by time passing.

Once per surge: after firing, a rule is *surging* and stays silent until its count
*falls back*: drops below half the level at some moment since the last check
(:func:`lowest`, exact between checks, whenever they happened). Half, not the level
itself: at a steady rate near the level, the sliding count dips by one each time a
story leaves the window before the next one arrives, and re-arming on that dip
would fire every few minutes through one and the same surge.

The baseline needs history: a rule fires only once the store has watched for
:func:`min_history` (a day, or the whole baseline when it is shorter) before the
current window; until then a fresh database would call every first hour a surge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.durations import format_duration

DAY = timedelta(days=1)
TOP_STORIES = 5  # the stories a surge alert names


@dataclass(frozen=True)
class SurgeSpec:
    """A surge rule's settings (``window``, ``baseline``, ``factor``, ``min_count``, ``cooldown``)."""

    window: timedelta = timedelta(hours=1)
    baseline: timedelta = timedelta(days=7)
    factor: float = 4.0
    min_count: int = 5
    cooldown: timedelta | None = None  # a new surge this soon after the last one alerted alerts nobody

    @property
    def lookback(self) -> timedelta:
        """How far back a check reads matching items: the baseline and the current window."""
        return self.baseline + self.window


@dataclass(frozen=True)
class Point:
    """A matching item: when it was first seen and its story, with what an alert shows of it."""

    item_id: int
    story_id: int
    seen_at: datetime
    feed: str = ""
    title: str = ""
    link: str | None = None


@dataclass(frozen=True)
class StoryCount:
    """A story of the window: its first matching item, and the outlets that ran it there."""

    story_id: int
    first: Point
    items: int
    outlets: tuple[tuple[str, str | None], ...]  # (feed, link), in the order they ran it


@dataclass(frozen=True)
class Measure:
    """A query's surge figures at one moment."""

    at: datetime
    count: int  # stories that surfaced in the window
    usual: float  # stories per window over the baseline before it
    level: float  # the count that fires: max(min_count, factor * usual)
    enough_history: bool
    baseline_span: timedelta  # how much of the baseline the store watched

    @property
    def ratio(self) -> float | None:
        """How many times the usual rate the count is; None when the usual rate is zero."""
        return self.count / self.usual if self.usual > 0 else None

    @property
    def surging(self) -> bool:
        return self.enough_history and self.count >= self.level


@dataclass(frozen=True)
class SurgeState:
    """What a surge rule remembers between checks (stored, so a restart neither forgets nor re-fires)."""

    rule: str
    query: str
    surging: bool = False
    checked_at: datetime | None = None  # the last check; the count is known to have stayed above since
    fired_at: datetime | None = None  # when the last surge alerted fired (one within a cooldown does not count)
    count: int = 0  # the count when it fired
    usual: float = 0.0  # the usual rate when it fired


@dataclass(frozen=True)
class Verdict:
    fire: bool
    state: SurgeState
    measure: Measure
    rearmed: bool = False  # the previous surge ended since the last check
    quieted: str | None = None  # a surge within the cooldown of the last one alerted: why it alerts nobody


def min_history(spec: SurgeSpec) -> timedelta:
    """How long the store must have watched before the current window for a baseline to mean something."""
    return min(spec.baseline - spec.window, DAY)


def surfaced(points: Iterable[Point]) -> dict[int, Point]:
    """Each story's first matching item (by time first seen, then id)."""
    first: dict[int, Point] = {}
    for point in points:
        known = first.get(point.story_id)
        if known is None or (point.seen_at, point.item_id) < (known.seen_at, known.item_id):
            first[point.story_id] = point
    return first


def measure(
    stories: dict[int, Point] | Sequence[Point], spec: SurgeSpec, now: datetime, watched_since: datetime | None
) -> Measure:
    """The figures at ``now`` from matching items (or their stories' first items, from :func:`surfaced`).

    ``watched_since``: when the store first saw anything (None: nothing yet).
    """
    first = stories if isinstance(stories, dict) else surfaced(stories)
    window_start = now - spec.window
    baseline_start = now - spec.baseline
    if watched_since is not None and watched_since > baseline_start:
        baseline_start = watched_since
    count = before = 0
    for point in first.values():
        if window_start < point.seen_at <= now:
            count += 1
        elif baseline_start < point.seen_at <= window_start:
            before += 1
    span = max(window_start - baseline_start, timedelta(0)) if watched_since is not None else timedelta(0)
    windows = span / spec.window
    usual = before / windows if windows > 0 else 0.0
    enough = watched_since is not None and span >= min_history(spec)
    return Measure(now, count, usual, max(float(spec.min_count), spec.factor * usual), enough, span)


def lowest(first: dict[int, Point], window: timedelta, since: datetime, until: datetime) -> int:
    """The lowest window count at any moment in [since, until): exact, whenever the checks happened.

    The count only drops when a story leaves the window (``window`` after it
    surfaced), so it is enough to look at ``since`` and at each such moment.
    """
    moments = [since] + [p.seen_at + window for p in first.values() if since < p.seen_at + window < until]
    return min(sum(1 for p in first.values() if m - window < p.seen_at <= m) for m in moments)


def check(
    state: SurgeState, points: Sequence[Point], spec: SurgeSpec, now: datetime, watched_since: datetime | None
) -> Verdict:
    """Whether a surge fires at ``now``, and the state to remember."""
    first = surfaced(points)
    found = measure(first, spec, now, watched_since)
    surging, rearmed = state.surging, False
    if surging:
        since = state.checked_at or state.fired_at or now
        if since < now and lowest(first, spec.window, since, now) < found.level / 2:
            surging, rearmed = False, True
        elif since >= now and found.count < found.level / 2:
            surging, rearmed = False, True
    if not surging and found.surging:
        ago = None if state.fired_at is None else max(now - state.fired_at, timedelta(0))
        if spec.cooldown is not None and ago is not None and ago < spec.cooldown:
            # Remembered as surging (it re-arms like any surge), so it does not fire when the cooldown ends.
            why = f"cooldown ({format_duration(spec.cooldown)}): last surge alerted {format_duration(ago)} ago"
            return Verdict(False, replace(state, surging=True, checked_at=now), found, rearmed, why)
        fired = replace(state, surging=True, checked_at=now, fired_at=now, count=found.count, usual=found.usual)
        return Verdict(True, fired, found, rearmed)
    return Verdict(False, replace(state, surging=surging, checked_at=now), found, rearmed)


def top_stories(points: Sequence[Point], first: dict[int, Point], start: datetime, now: datetime,
                limit: int = TOP_STORIES) -> list[StoryCount]:  # fmt: skip
    """The stories that surfaced in (start, now], the most-run first, with every outlet that ran each by ``now``."""
    chosen = {story for story, point in first.items() if start < point.seen_at <= now}
    runs: dict[int, list[Point]] = {}
    for point in sorted(points, key=lambda p: (p.seen_at, p.item_id)):
        if point.story_id in chosen and point.seen_at <= now:
            runs.setdefault(point.story_id, []).append(point)
    counted = []
    for story, items in runs.items():
        outlets: dict[str, str | None] = {}
        for point in items:
            outlets.setdefault(point.feed, point.link)
        counted.append(StoryCount(story, first[story], len(items), tuple(outlets.items())))
    counted.sort(key=lambda s: (-len(s.outlets), -s.items, -s.first.seen_at.timestamp(), s.story_id))
    return counted[: max(limit, 0)]


@dataclass(frozen=True)
class Firing:
    """When a surge would have fired in history, with its figures and stories."""

    measure: Measure
    stories: list[StoryCount]


def replay(points: Sequence[Point], spec: SurgeSpec, watched_since: datetime | None, *,
           since: datetime | None = None, query: str = "") -> list[Firing]:  # fmt: skip
    """Every surge the rule would have fired over ``points`` (any order), checked at each arrival.

    The live checks happen when matching items arrive, and so do these: the
    same :func:`check`, the same state, in time order. Firings before ``since``
    are left out (they only set the state the period starts in).
    """
    ordered = sorted(points, key=lambda p: (p.seen_at, p.item_id))
    state = SurgeState("replay", query)
    firings: list[Firing] = []
    seen: list[Point] = []
    index = 0
    while index < len(ordered):
        moment = ordered[index].seen_at
        while index < len(ordered) and ordered[index].seen_at == moment:
            seen.append(ordered[index])
            index += 1
        # Only what the lookback covers, as a live check reads it.
        horizon = moment - spec.lookback
        recent = [p for p in seen if p.seen_at > horizon]
        seen = recent
        verdict = check(state, recent, spec, moment, watched_since)
        state = verdict.state
        if verdict.fire and (since is None or moment >= since):
            first = surfaced(recent)
            firings.append(Firing(verdict.measure, top_stories(recent, first, moment - spec.window, moment)))
    return firings


def describe(found: Measure, spec: SurgeSpec) -> str:
    """``12 stories in the last 1 h; usual 1.5 per 1 h over 7 d — 8x``."""
    window = format_duration(spec.window)
    usual = f"{found.usual:.2g}" if found.usual else "0"
    ratio = found.ratio
    times = (
        " — none usually"
        if ratio is None
        else f" — {math.floor(ratio) if ratio >= 10 else math.floor(ratio * 10) / 10:g}x"
    )
    noun = "story" if found.count == 1 else "stories"
    over = format_duration(found.baseline_span + spec.window)
    return f"{found.count} {noun} in the last {window}; usual {usual} per {window} over {over}{times}"
