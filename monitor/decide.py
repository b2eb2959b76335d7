"""What a batch of analysed items means: pure, plain data in, an :class:`~monitor.store.Intent` out.

    snapshot (known items, story candidates, the outbox's pacing history)
      + analysed items (entities, matches, story fingerprints) + rule plans + now
      -> Intent: items to store, the story each joins, its entities and matches,
         and each new alert with its decided state (send now, hold, suppress) and reason

No I/O, no clock reads. The store writes the intent in one transaction and
decides nothing; the pipeline reads the snapshot and calls this in between.

What must be serialised is serialised here, item by item: a second copy of a
story in the same batch joins the first copy's story and is a repeat of its
alert, and a burst counts against its own max_per_hour. ``rules test`` replays
history through the same :class:`CandidatePool` and :class:`Ledger`
(see :mod:`monitor.backtest`), so what it counts is what delivery would send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor import stories
from monitor.alerts.pacing import Decision, RecentHistory, RulePolicy
from monitor.alerts.pacing import decide as pace
from monitor.items import Item, Mention
from monitor.store.records import (
    AlertHistory,
    AlertStatus,
    AlertWrite,
    FeedWrite,
    Intent,
    ItemWrite,
    KnownItem,
    MatchWrite,
    Snapshot,
    StoryCandidate,
    StoryInfo,
    StoryJoin,
)

HOUR = timedelta(hours=1)
CANDIDATES_PER_KEY = 20  # the store's bound, kept here too for items of the same batch
# Items of the batch being decided have no ids yet; they are numbered from here, above any stored id.
_BATCH_BASE = 1 << 62
_NO_TEXT = stories.fingerprint("", "")
_STATUS = {"send": AlertStatus.PENDING, "hold": AlertStatus.HELD, "suppress": AlertStatus.SUPPRESSED}


@dataclass(frozen=True)
class RulePlan:
    """What becomes of a rule's matches: the channels it notifies and how its alerts are paced."""

    channels: tuple[str, ...]
    policy: RulePolicy = field(default_factory=RulePolicy)


@dataclass(frozen=True)
class Analysed:
    """An item with what the CPU stage found: entities, matching rules (with their hits), story fingerprint."""

    item: Item
    mentions: tuple[Mention, ...] = ()
    matches: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = ()  # (rule name, hits)
    story: StoryInfo | None = None


def story_info(item: Item) -> StoryInfo:
    """What finds an item's story: canonical link, text fingerprint, lookup keys."""
    link_key = stories.canonical_link(item.link)
    fp = stories.fingerprint(item.title, item.text)
    return StoryInfo(link_key, fp.to_db(), tuple(stories.lookup_keys(link_key, fp)))


def fresh_items(items: Sequence[Item], known: Mapping[str, KnownItem]) -> list[Item]:
    """Items that are new, or whose content changed since we stored them.

    A feed that lists the same entry twice keeps the first copy.
    """
    seen: set[str] = set()
    fresh = []
    for item in items:
        if item.key in seen:
            continue
        seen.add(item.key)
        stored = known.get(item.key)
        if stored is None or stored.content_hash != item.content_hash:
            fresh.append(item)
    return fresh


def new_this_week(fresh: Sequence[Item], known: Mapping[str, KnownItem], now: datetime) -> int:
    """How many of this poll's new (not merely changed) items were published in the last week."""
    week_ago = now - timedelta(days=7)
    return sum(1 for item in fresh if item.key not in known and (item.published_at or now) > week_ago)


# --- stories -----------------------------------------------------------------------


class CandidatePool:
    """Earlier items by story lookup key, as the store hands them out: the newest few per key.

    Starts from a snapshot's candidates; items placed since (earlier items of
    the same batch, or the replayed history) are added as they are placed.
    Each candidate's fingerprint is read once, when it joins the pool.
    """

    def __init__(self, found: Mapping[str, Iterable[StoryCandidate]] = (), *, per_key: int = CANDIDATES_PER_KEY):
        self.per_key = per_key
        self._by_key: dict[str, list[stories.Candidate]] = {}
        self._unsorted: set[str] = set()
        parsed: dict[int, stories.Candidate] = {}
        for key, candidates in dict(found).items():
            for candidate in candidates:
                if candidate.item_id not in parsed:
                    parsed[candidate.item_id] = _parsed(candidate)
                self._file(key, parsed[candidate.item_id])

    def add(self, keys: Iterable[str], candidate: StoryCandidate) -> None:
        parsed = _parsed(candidate)
        for key in keys:
            self._file(key, parsed)

    def _file(self, key: str, candidate: stories.Candidate) -> None:
        filed = self._by_key.setdefault(key, [])
        filed.append(candidate)
        self._unsorted.add(key)
        if len(filed) > 4 * self.per_key:
            # Only the newest per_key of a key are ever chosen, now or after later additions: keep those,
            # so a replay of a long history where many items share a key stays linear.
            filed.sort(key=lambda c: (c.seen_at, c.item_id), reverse=True)
            del filed[self.per_key :]
            self._unsorted.discard(key)

    def candidates(self, keys: Iterable[str], since: datetime) -> list[stories.Candidate]:
        """The newest ``per_key`` candidates seen at or after ``since`` under each key, each once."""
        chosen: dict[int, stories.Candidate] = {}
        for key in keys:
            filed = self._by_key.get(key)
            if not filed:
                continue
            if key in self._unsorted:
                filed.sort(key=lambda c: (c.seen_at, c.item_id), reverse=True)
                self._unsorted.discard(key)
            taken = 0
            for candidate in filed:  # newest first
                if candidate.seen_at < since or taken == self.per_key:
                    break
                chosen[candidate.item_id] = candidate
                taken += 1
        return [chosen[item_id] for item_id in sorted(chosen)]


def choose_story(
    info: StoryInfo, candidates: Sequence[stories.Candidate], threshold: float
) -> stories.StoryMatch | None:
    """The earlier story an item joins, or None when it starts one (see :func:`stories.same_story`)."""
    if not candidates:
        return None
    return stories.same_story(
        info.link_key, stories.Fingerprint.from_db(info.fingerprint), candidates, threshold=threshold
    )


def _parsed(candidate: StoryCandidate) -> stories.Candidate:
    return stories.Candidate(
        candidate.story_id, candidate.item_id, candidate.link_key, _fingerprint(candidate.fingerprint), candidate.seen_at
    )


def _fingerprint(data: bytes | None) -> stories.Fingerprint:
    if not data:
        return _NO_TEXT
    try:
        return stories.Fingerprint.from_db(data)
    except ValueError:  # a fingerprint of an older format: that item can match by link only
        return _NO_TEXT


# --- pacing ------------------------------------------------------------------------

StoryRef = int  # a stored story id, or _BATCH_BASE + index for a story begun in this batch


class Ledger:
    """The outbox's pacing history, kept up to date as alerts are decided one after another."""

    def __init__(self, history: AlertHistory | None = None):
        history = history or AlertHistory()
        self._instant = {pair: list(times) for pair, times in history.instant.items()}
        self._last = dict(history.last_for_story)

    def decide(self, rule: str, channel: str, story: StoryRef, policy: RulePolicy, now: datetime) -> Decision:
        recent = [t for t in self._instant.get((rule, channel), ()) if t > now - HOUR]
        history = RecentHistory(len(recent), min(recent, default=None), self._last.get((rule, channel, story)))
        decision = pace(policy, now, history)
        if decision.action == "send":
            self._instant.setdefault((rule, channel), []).append(now)
        if decision.action != "suppress":
            self._last[(rule, channel, story)] = now
        return decision


# --- the decision --------------------------------------------------------------------


def decide_poll(
    feed_id: int,
    analysed: Sequence[Analysed],
    snapshot: Snapshot,
    plans: Mapping[str, RulePlan],
    *,
    now: datetime,
    feed: FeedWrite | None,
    backfill: bool,
    story_window: timedelta,
    threshold: float,
) -> Intent:
    """What one poll of a feed means. ``backfill``: a first fetch, stored now, enriched later, alerting nobody.

    ``feed`` is None for content a WebSub hub pushed: the feed's poll state stays as it is.
    """
    if backfill:
        writes = tuple(ItemWrite(feed_id, a.item, enriched=False, backfill=True) for a in analysed)
        return Intent(now, writes, feed)
    pool = CandidatePool(snapshot.candidates)
    ledger = Ledger(snapshot.history)
    writes = []
    for index, one in enumerate(analysed):
        known = snapshot.known.get(one.item.key)
        if known is not None and known.placed:  # a changed item keeps its id and its story
            story, join = known.story_id, None
        else:  # a new item, or one of a first fetch that changed before it was enriched
            story, join = _place(index, one.story, pool, now, now - story_window, threshold)
        alerts = []
        for rule, _ in one.matches:
            plan = plans.get(rule)
            for channel in plan.channels if plan else ():
                if known is not None and (known.id, rule, channel) in snapshot.alerted_items:
                    continue  # this item already alerted this rule there
                decision = ledger.decide(rule, channel, story, plan.policy, now)  # type: ignore[union-attr]
                alerts.append(AlertWrite(rule, channel, _STATUS[decision.action], decision.reason, decision.release_at))
        writes.append(
            ItemWrite(
                feed_id,
                one.item,
                item_id=known.id if known else None,
                story=one.story,
                join=join,
                mentions=one.mentions,
                matches=tuple(MatchWrite(rule, hits) for rule, hits in one.matches),
                alerts=tuple(alerts),
            )
        )
    return Intent(now, tuple(writes), feed)


@dataclass(frozen=True)
class Enrichable:
    """A stored item enriched after the fact: its id, feed, and when it was first seen."""

    item_id: int
    feed_id: int
    seen_at: datetime
    analysed: Analysed


def decide_enrichment(
    batch: Sequence[Enrichable], snapshot: Snapshot, *, now: datetime, story_window: timedelta, threshold: float
) -> Intent:
    """Entities, matches and stories of items stored without them. History only: no alerts."""
    pool = CandidatePool(snapshot.candidates)
    writes = []
    for index, one in enumerate(batch):
        _, join = _place(index, one.analysed.story, pool, one.seen_at, one.seen_at - story_window, threshold)
        writes.append(
            ItemWrite(
                one.feed_id,
                one.analysed.item,
                item_id=one.item_id,
                story=one.analysed.story,
                join=join,
                mentions=one.analysed.mentions,
                matches=tuple(MatchWrite(rule, hits) for rule, hits in one.analysed.matches),
            )
        )
    return Intent(now, tuple(writes))


def _place(
    index: int, info: StoryInfo | None, pool: CandidatePool, seen_at: datetime, since: datetime, threshold: float
) -> tuple[StoryRef, StoryJoin | None]:
    """The story of the batch's ``index``-th item, and how it joins it (None: it begins its own)."""
    own = _BATCH_BASE + index
    if info is None:
        return own, None
    match = choose_story(info, pool.candidates(info.keys, since), threshold)
    story = match.story_id if match else own
    pool.add(info.keys, StoryCandidate(story, own, info.link_key, info.fingerprint, seen_at))
    if match is None:
        return own, None
    if story >= _BATCH_BASE:
        return story, StoryJoin(batch_index=story - _BATCH_BASE, reason=match.reason)
    return story, StoryJoin(story_id=story, reason=match.reason)


@dataclass(frozen=True)
class Placed:
    """A stored item as a replay of story joins sees it."""

    item_id: int
    seen_at: datetime
    story: StoryInfo


def replay_stories(placed: Iterable[Placed], *, story_window: timedelta, threshold: float) -> dict[int, int]:
    """The story of each item when items are placed again in the given order (the order they were placed).

    The same pool and choice as a live poll: what ``rules test`` counts as a
    story is what the store recorded.
    """
    pool = CandidatePool()
    story_of: dict[int, int] = {}
    for one in placed:
        match = choose_story(one.story, pool.candidates(one.story.keys, one.seen_at - story_window), threshold)
        story = match.story_id if match else one.item_id
        story_of[one.item_id] = story
        pool.add(one.story.keys, StoryCandidate(story, one.item_id, one.story.link_key, one.story.fingerprint, one.seen_at))
    return story_of


def summarise(intent: Intent) -> dict[str, int]:
    """Counts for logs and reports: items, matches, alerts to send or hold, suppressed."""
    alerts = intent.alerts
    return {
        "items": len(intent.items),
        "matches": sum(len(write.matches) for write in intent.items),
        "alerts": sum(1 for a in alerts if a.status != AlertStatus.SUPPRESSED),
        "suppressed": sum(1 for a in alerts if a.status == AlertStatus.SUPPRESSED),
    }
