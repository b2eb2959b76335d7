"""What a rule would have done over stored history: matches per day, stories, alerts.

Pure: the caller reads the history (``Storage.iter_items`` and
``Storage.join_order``) and passes it in, with the times the report covers.

Stories and alerts are counted by replaying history through the very
decisions a live poll makes (:mod:`monitor.decide`): items are placed in
stories in the order the store placed them, with the same candidate pool and
threshold, and each match's alerts are paced by the rule's own policy
(cooldown, digests, quiet hours, max_per_hour) in the order they arrived.
So "N stories, M alerts" is what delivery would have sent, had the rule been
in force. Items of a feed's first fetch alert nobody when they arrive; by
default they are counted as the news they were when published (a first fetch
is often most of a young history), and ``first_fetch_alerts=False`` counts
them as delivery did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from monitor import stories
from monitor.alerts.pacing import RulePolicy
from monitor.decide import Ledger, Placed, replay_stories
from monitor.items import Item
from monitor.rules.document import Document, Hit, Lexicon
from monitor.rules.evaluate import CompiledRule, explain
from monitor.store.records import StoredItem, StoryInfo


@dataclass(frozen=True)
class BacktestMatch:
    """A stored item the rule matches, why, and the story it belongs to."""

    item_id: int
    feed: str
    item: Item
    first_seen_at: datetime
    hits: list[Hit]
    story_id: int

    def to_dict(self) -> dict[str, object]:
        item = self.item
        return {
            "id": self.item_id,
            "feed": self.feed,
            "guid": item.guid,
            "link": item.link,
            "title": item.title,
            "published_at": item.published_at.isoformat() if item.published_at else None,
            "first_seen_at": self.first_seen_at.isoformat(),
            "story": self.story_id,
            "why": [hit.to_dict() for hit in self.hits],
        }


@dataclass
class BacktestReport:
    scanned: int
    matches: list[BacktestMatch]  # oldest first
    per_day: dict[date, int]  # matches per UTC day first seen; every day of the range, zeros included
    stories: int  # distinct stories among the matches
    alerts: int  # sent at once or in a digest, over all channels: what delivery would have sent
    held: int = 0  # of those, sent in a digest (digest mode, quiet hours, max_per_hour)
    suppressed: int = 0  # repeats of a story already alerted (or within its cooldown)
    backfill: int = 0  # matches that arrived in a first fetch (which alerts nobody when it arrives)
    story_of: dict[int, int] = field(default_factory=dict, repr=False)  # every replayed item's story

    def sample(self, limit: int) -> list[BacktestMatch]:
        """The ``limit`` most recent matches, newest first."""
        return self.matches[::-1][: max(limit, 0)]

    def to_dict(self, sample: int) -> dict[str, object]:
        return {
            "scanned": self.scanned,
            "matched": len(self.matches),
            "stories": self.stories,
            "alerts": self.alerts,
            "held": self.held,
            "suppressed": self.suppressed,
            "per_day": {day.isoformat(): count for day, count in self.per_day.items()},
            "sample": [match.to_dict() for match in self.sample(sample)],
        }


def backtest(
    rule: CompiledRule,
    items: Iterable[StoredItem],
    lexicon: Lexicon,
    *,
    channels: tuple[str, ...] = ("test",),
    policy: RulePolicy | None = None,
    join_order: Mapping[int, int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    story_window: timedelta = stories.CANDIDATE_WINDOW,
    threshold: float = stories.DEFAULT_THRESHOLD,
    first_fetch_alerts: bool = True,
    story_of: Mapping[int, int] | None = None,
    not_matching: Iterable[datetime] = (),
) -> BacktestReport:
    """Run ``rule`` over stored items as the pipeline would have when they arrived.

    ``items`` may start up to ``story_window`` before ``since``: those earlier
    items only serve as stories to join. ``join_order`` is the order the store
    placed items in stories (``Storage.join_order``); without it, the order of
    first sight. ``since``/``until`` widen the per-day range to the whole
    period asked about, so quiet days at either end show as zeros.
    ``story_of`` gives each item's story instead of replaying the placement
    (the stories the store placed items in, say, for a quick answer).
    ``not_matching`` are the first-seen times of further items of the period
    that a prefilter showed the rule cannot match: counted as scanned, never read.
    """
    found: list[tuple[StoredItem, list[Hit]]] = []
    placed: list[Placed] = []
    days = [_utc_day(t) for t in (since, until) if t is not None]
    scanned = 0
    for stored in items:
        info = _story_info(stored.story) if story_of is None else None
        if info is not None:
            placed.append(Placed(stored.id, stored.first_seen_at, info))
        if since is not None and stored.first_seen_at < since:
            continue
        scanned += 1
        days.append(_utc_day(stored.first_seen_at))
        hits = explain(rule, document_of(stored), lexicon)
        if hits is not None:
            found.append((stored, hits))
    for seen_at in not_matching:
        if since is None or seen_at >= since:
            scanned += 1
            days.append(_utc_day(seen_at))
    if story_of is None:
        order = join_order or {}
        placed.sort(key=lambda one: (order.get(one.item_id, 1 << 62), one.seen_at, one.item_id))
        story_of = replay_stories(placed, story_window=story_window, threshold=threshold)

    found.sort(key=lambda pair: (pair[0].first_seen_at, pair[0].id))
    matches = [
        BacktestMatch(stored.id, stored.feed, stored.item, stored.first_seen_at, hits, story_of.get(stored.id, stored.id))
        for stored, hits in found
    ]
    ledger, policy = Ledger(), policy or RulePolicy()
    counts = {"send": 0, "hold": 0, "suppress": 0}
    backfill = 0
    for (stored, _), match in zip(found, matches, strict=True):
        if stored.backfill:
            backfill += 1
            if not first_fetch_alerts:
                continue
        for channel in channels:
            counts[ledger.decide(rule.name, channel, match.story_id, policy, stored.first_seen_at).action] += 1
    per_day = _empty_days(min(days), max(days)) if days else {}
    for match in matches:
        per_day[_utc_day(match.first_seen_at)] += 1
    return BacktestReport(
        scanned,
        matches,
        per_day,
        stories=len({match.story_id for match in matches}),
        alerts=counts["send"] + counts["hold"],
        held=counts["hold"],
        suppressed=counts["suppress"],
        backfill=backfill,
        story_of=dict(story_of),
    )


def document_of(stored: StoredItem) -> Document:
    """A stored item as rules see it; the same Document the pipeline builds on arrival."""
    return Document.from_item(stored.item, stored.feed, stored.mentions, stored.feed_tags)


def _story_info(story: StoryInfo | None) -> StoryInfo | None:
    """A stored item's story info with its lookup keys, or None when it has none to be found by."""
    if story is None:
        return None
    try:
        fp = stories.Fingerprint.from_db(story.fingerprint)
    except ValueError:  # an older fingerprint format: found by its link only
        fp = stories.fingerprint("", "")
    keys = tuple(stories.lookup_keys(story.link_key, fp))
    return StoryInfo(story.link_key, story.fingerprint, keys) if keys else None


def render_histogram(per_day: dict[date, int], width: int = 40) -> list[str]:
    """One text line per day, ``2026-11-20  12 ████``; bars scaled to the busiest day."""
    if width < 1:
        raise ValueError("width must be at least 1")
    if not per_day:
        return []
    busiest = max(per_day.values())
    digits = len(str(busiest))
    lines = []
    for day, count in sorted(per_day.items()):
        # Any match at all gets at least one block, so a quiet day never looks empty.
        bar = "█" * max(round(count / busiest * width), 1) if count else ""
        lines.append(f"{day.isoformat()}  {count:>{digits}} {bar}".rstrip())
    return lines


def _utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _empty_days(first: date, last: date) -> dict[date, int]:
    return {first + timedelta(days=n): 0 for n in range((last - first).days + 1)}
