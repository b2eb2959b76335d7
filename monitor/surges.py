"""Surge checks of the spike: rules, in the daemon and ``poll --once``. This module reads and writes; it decides nothing.

    a poll stored items a spike rule matched (the rulebook matched them on arrival, and stored the matches)
      | the rule's matching items over its lookback (baseline + window): SurgeWatch.points
          store.rule_matches: the matches stored since the rule's first check (one indexed query)
          + before that (a rule just added, or its query changed): store.iter_items | rules.evaluate.explain,
            the evaluation ``rules test`` uses, once per process; in the daemon a HistoryJob in the HistoryLane
            (a thread with a store connection of its own), the rule checked when it is done
      | ONE transaction: store.surge_states + the outbox's pacing history
          | rules.surge.check (fire once per surge; re-arm when it falls back) | pacing (decide.Ledger)
          | store.write(Intent(surges=...)): the new state, and the surge's alert rows in the outbox

The alert rows go through the outbox like any alert (pacing, delivery,
retries), each a message of its own (story id 0).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from monitor.assembly import Setup, SurgePlan
from monitor.backtest import document_of
from monitor.decide import Ledger
from monitor.durations import format_duration
from monitor.rules import surge
from monitor.rules.document import Lexicon
from monitor.rules.evaluate import CompiledRule, explain
from monitor.store import AlertStatus, Intent, Storage, StoredItem
from monitor.store.records import SurgeAlertWrite, SurgeRecord, SurgeWrite

log = logging.getLogger("monitor.surges")

MAX_OUTLETS = 12
# Items are first seen at their poll's start and stored at its end: polls that overlap the first check may store
# items first seen a little before it. Stored matches are read this far before ``matching_since`` too.
_OVERLAP = timedelta(minutes=10)  # per story in an alert's payload
_STATUS = {"send": AlertStatus.PENDING, "hold": AlertStatus.HELD, "suppress": AlertStatus.SUPPRESSED}


def point_of(stored: StoredItem) -> surge.Point:
    return surge.Point(
        stored.id, stored.story_id, stored.first_seen_at, stored.feed, stored.item.title, stored.item.link
    )


def matching_points(
    rule: CompiledRule, items: Iterable[StoredItem], lexicon: Lexicon
) -> tuple[list[surge.Point], int, int]:
    """The stored items ``rule`` matches, as points; how many were read and the highest id read.

    Items of a feed's first fetch never count: they arrive all at once, whenever
    they were published, and would look like a surge of the moment the feed was added.
    """
    points, read, last = [], 0, 0
    for stored in items:
        read += 1
        last = max(last, stored.id)
        if not stored.backfill and explain(rule, document_of(stored), lexicon) is not None:
            points.append(point_of(stored))
    return points, read, last


@dataclass
class _Memory:
    """The rule's matching items from before its matches were recorded on arrival (history: it never changes)."""

    rule: CompiledRule  # a reload compiles anew, and the memory starts again
    covered_from: datetime | None  # matches rows are complete from here on
    evaluated_since: datetime  # items first seen from here (up to covered_from) were evaluated
    points: dict[int, surge.Point] = field(default_factory=dict)
    read: int = 0  # items read and evaluated


@dataclass(frozen=True)
class HistoryJob:
    """The items of a spike rule's lookback from before its matches were stored, to read and evaluate once."""

    name: str
    rule: CompiledRule
    lexicon: Lexicon
    horizon: datetime  # items first seen from here...
    covered_from: datetime  # ...until here (its matches are stored from here on)


class HistoryStopped(Exception):
    """A history evaluation left unfinished: the daemon is stopping."""


def evaluate_history(store: Storage, job: HistoryJob, stopping: Callable[[], bool] = lambda: False) -> _Memory:
    """Read and evaluate the items of ``job`` (seconds on a long history: run it off the event loop)."""
    points: dict[int, surge.Point] = {}
    read = 0
    for stored in store.iter_items(since=job.horizon):
        read += 1
        if read % 500 == 0 and stopping():
            raise HistoryStopped(job.name)
        if stored.first_seen_at < job.covered_from and not stored.backfill:
            if explain(job.rule, document_of(stored), job.lexicon) is not None:
                points[stored.id] = point_of(stored)
    return _Memory(job.rule, job.covered_from, job.horizon, points, read)


class HistoryLane:
    """One thread with a store connection of its own, where the history of spike rules just added is evaluated.

    The event loop, the CPU thread (new items' entities and matches) and the
    other rules' surge checks never wait for it: an evaluation of a long history
    takes seconds. Jobs run one at a time; the connection opens on the first.
    """

    def __init__(self, open_store: Callable[[], Storage]):
        self._open = open_store
        self._store: Storage | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="surge-history")
        self.closing = False

    def _run(self, job: HistoryJob) -> _Memory:
        if self.closing:
            raise HistoryStopped(job.name)
        if self._store is None:
            self._store = self._open()
        return evaluate_history(self._store, job, lambda: self.closing)

    async def evaluate(self, job: HistoryJob) -> _Memory:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._run, job)

    def close(self) -> None:
        """Stop the evaluation under way (within a batch of items), close the connection, end the thread."""

        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        self.closing = True
        self._pool.submit(close_store)
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class SurgeOutcome:
    """What one check of one spike rule found."""

    rule: str
    fired: bool
    measure: surge.Measure
    alerts: int = 0
    quieted: str | None = None  # a surge within the rule's cooldown: its rows are stored suppressed, with this reason


class SurgeWatch:
    """Where each spike rule's matching items come from, between checks.

    A spike rule is in the rulebook, so every new item is matched against it on
    arrival and its matches are stored: from the moment a rule is first checked
    (``matching_since``, stored with its state), its counts come from the store's
    matches (``Storage.rule_matches``, one indexed query). Only the items of its
    lookback from before that moment -- a rule just added, or whose query changed --
    are read and evaluated here, once per process, with the evaluation ``rules test`` uses.
    """

    def __init__(self) -> None:
        self._memory: dict[str, _Memory] = {}
        self.items_read = 0  # items evaluated in all (for benchmarks and logs)

    def _remembers(self, name: str, rule: CompiledRule, horizon: datetime, covered_from: datetime | None) -> bool:
        memory = self._memory.get(name)
        return (
            memory is not None
            and memory.rule is rule  # a reload compiles anew, and the memory starts again
            and memory.covered_from in (None, covered_from)  # None: evaluated up to its first check
            and memory.evaluated_since <= horizon
        )

    def remember(self, name: str, memory: _Memory) -> None:
        """What a HistoryJob found, for the checks of its rule from now on."""
        self._memory[name] = memory
        self.items_read += memory.read

    def _covered(self, name: str, rule: CompiledRule) -> datetime | None:
        """Until when a HistoryJob evaluated a rule never checked before: its matches are stored from then on."""
        memory = self._memory.get(name)
        return memory.covered_from if memory is not None and memory.rule is rule else None

    def points(self, store: Storage, name: str, rule: CompiledRule, lexicon: Lexicon, spec: surge.SurgeSpec,
               now: datetime, matching_since: datetime | None) -> list[surge.Point]:  # fmt: skip
        """The rule's matching items first seen within its lookback of ``now``."""
        horizon = now - spec.lookback
        found: dict[int, surge.Point] = {}
        if matching_since is None or matching_since > horizon:
            found.update(self._evaluated(store, name, rule, lexicon, horizon, matching_since))
        if matching_since is not None:
            for one in store.rule_matches(name, max(horizon, matching_since - _OVERLAP)):
                found[one.item_id] = surge.Point(
                    one.item_id, one.story_id, one.first_seen_at, one.feed, one.title, one.link
                )
        return [point for point in found.values() if point.seen_at > horizon]

    def _evaluated(self, store: Storage, name: str, rule: CompiledRule, lexicon: Lexicon, horizon: datetime,
                   covered_from: datetime | None) -> dict[int, surge.Point]:  # fmt: skip
        """The matching items first seen from ``horizon`` until ``covered_from`` (None: until now), evaluated here."""
        memory = self._memory.get(name)
        if memory is None or not self._remembers(name, rule, horizon, covered_from):
            items = store.iter_items(since=horizon)
            if covered_from is not None:
                items = (stored for stored in items if stored.first_seen_at < covered_from)
            found, read, _ = matching_points(rule, items, lexicon)
            self.items_read += read
            memory = self._memory[name] = _Memory(rule, covered_from, horizon, {p.item_id: p for p in found}, read)
        return memory.points

    def check(
        self,
        store: Storage,
        setup: Setup,
        now: datetime,
        rules: Iterable[str] | None = None,
        history: Callable[[HistoryJob], None] | None = None,
    ) -> list[SurgeOutcome]:
        """Check the spike rules (those named, or all) at ``now``; write their states and any surge's alerts.

        A rule whose stored history must first be evaluated (just added, or its
        query changed) is evaluated here, or, given ``history``, handed to it as
        a HistoryJob and not checked now (check it again when the job is done).
        """
        book = setup.rulebook
        wanted = None if rules is None else set(rules)
        names = [name for name in book.surges if name in book.compiled and (wanted is None or name in wanted)]
        if not names:
            return []
        known = store.surge_states()
        since = {
            name: _matching_since(known.get(name), book.compiled[name].query)
            or self._covered(name, book.compiled[name])
            for name in names
        }
        if history is not None:
            for name in list(names):
                horizon, rule = now - book.surges[name].spec.lookback, book.compiled[name]
                covered = since[name]
                if (covered is None or covered > horizon) and not self._remembers(name, rule, horizon, covered):
                    history(HistoryJob(name, rule, book.lexicon, horizon, covered or now))
                    names.remove(name)
            if not names:
                return []
        points = {
            name: self.points(store, name, book.compiled[name], book.lexicon, book.surges[name].spec, now, since[name])
            for name in names
        }
        watched = store.first_seen()
        outcomes: list[SurgeOutcome] = []
        with store.transaction():
            states = store.surge_states()
            pairs = [(name, channel) for name in names for channel in book.surges[name].channels]
            snapshot = store.snapshot(feed_id=None, item_keys=(), story_keys=(), since=now, pairs=pairs, now=now)
            ledger = Ledger(snapshot.history)
            writes = []
            for name in names:
                plan, query = book.surges[name], book.compiled[name].query
                verdict = surge.check(_state(states.get(name), name, query), points[name], plan.spec, now, watched)
                alerts = (
                    _alerts(name, plan, verdict, points[name], ledger, setup, now)
                    if verdict.fire or verdict.quieted
                    else ()
                )
                matching = _matching_since(states.get(name), query) or since[name] or now
                writes.append(SurgeWrite(_record(verdict.state, matching), alerts))
                outcomes.append(SurgeOutcome(name, verdict.fire, verdict.measure, len(alerts), verdict.quieted))
            store.write(Intent(now, surges=tuple(writes)))
        for outcome in outcomes:
            if outcome.quieted:
                extra = {"rule": outcome.rule, "count": outcome.measure.count, "reason": outcome.quieted}
                log.info("surge.suppressed", extra=extra)
            if outcome.fired:
                log.info(
                    "surge.fired",
                    extra={
                        "rule": outcome.rule,
                        "count": outcome.measure.count,
                        "usual": round(outcome.measure.usual, 3),
                        "alerts": outcome.alerts,
                    },
                )
        return outcomes


def _matching_since(record: SurgeRecord | None, query: str) -> datetime | None:
    """Since when the rule's matches are complete: from its first check with this query."""
    return record.matching_since if record is not None and record.query == query else None


def _state(record: SurgeRecord | None, name: str, query: str) -> surge.SurgeState:
    """The remembered state; a rule whose query changed starts afresh (its old surge was about something else)."""
    if record is None or record.query != query:
        return surge.SurgeState(name, query)
    return surge.SurgeState(name, query, record.surging, record.checked_at, record.fired_at, record.count, record.usual)


def _record(state: surge.SurgeState, matching_since: datetime) -> SurgeRecord:
    return SurgeRecord(
        state.rule,
        state.query,
        state.surging,
        state.checked_at,
        state.fired_at,
        state.count,
        state.usual,
        matching_since,
    )


def _alerts(
    name: str,
    plan: SurgePlan,
    verdict: surge.Verdict,
    points: Sequence[surge.Point],
    ledger: Ledger,
    setup: Setup,
    now: datetime,
) -> tuple[SurgeAlertWrite, ...]:
    """The outbox rows of a surge that fired: one per channel, paced by the rule's own policy.

    A surge within the rule's cooldown is stored too, suppressed with its reason (``alerts list`` shows it).
    """
    first = surge.surfaced(points)
    stories = surge.top_stories(points, first, now - plan.spec.window, now)
    in_window = [p for p in points if now - plan.spec.window < p.seen_at <= now]
    newest = max(in_window, key=lambda p: (p.seen_at, p.item_id))
    payload = surge_payload(name, setup.rulebook.compiled[name].query, plan.spec, verdict.measure, stories)
    policy = setup.policy(name)
    rows = []
    for channel in plan.channels:
        if verdict.quieted:
            rows.append(SurgeAlertWrite(channel, AlertStatus.SUPPRESSED, newest.item_id, payload, verdict.quieted))
            continue
        decision = ledger.decide(name, channel, 0, policy, now)
        rows.append(
            SurgeAlertWrite(
                channel, _STATUS[decision.action], newest.item_id, payload, decision.reason, decision.release_at
            )
        )
    return tuple(rows)


def surge_payload(
    rule: str, query: str, spec: surge.SurgeSpec, found: surge.Measure, stories: Sequence[surge.StoryCount]
) -> dict[str, Any]:
    """What a surge alert's message says, stored with its outbox row (plain JSON, bounded)."""
    return {
        "rule": rule,
        "query": query,
        "title": f"Surge: {query}"[:300],
        "summary": surge.describe(found, spec),
        "count": found.count,
        "usual": round(found.usual, 3),
        "ratio": None if found.ratio is None else round(found.ratio, 1),
        "window": format_duration(spec.window),
        "baseline": format_duration(spec.baseline),
        "at": found.at.isoformat(),
        "stories": [
            {
                "title": story.first.title,
                "link": story.first.link,
                "feed": story.first.feed,
                "items": story.items,
                "seen_at": story.first.seen_at.isoformat(),
                "outlets": [[feed, link] for feed, link in story.outlets[:MAX_OUTLETS] if feed != story.first.feed],
            }
            for story in stories
        ],
    }
