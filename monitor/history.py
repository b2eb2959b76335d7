"""A rule over stored history, read from the store: what `rules test` and the dashboard's rule tester run.

    store.iter_items + store.join_order ─ backtest.backtest (pure, through decide) ─ BacktestReport

Both callers go through :func:`rule_history`, so the dashboard's chart and counts
are the very figures `rules test` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.backtest import BacktestReport, backtest
from monitor.rules.prefilter import may_contain, required_words

if TYPE_CHECKING:
    from monitor.config import StorySettings
    from monitor.decide import RulePlan
    from monitor.rules.document import Lexicon
    from monitor.rules.evaluate import CompiledRule
    from monitor.store import Storage


@dataclass(frozen=True)
class RuleHistory:
    """A rule's report over stored history, and the period it covers."""

    report: BacktestReport
    since: datetime  # the first moment covered: the period asked for, cut to what is stored (and to ``max_items``)
    until: datetime
    cut: bool = False  # True: more items were stored in the period than ``max_items``; only the newest were read


def rule_history(
    store: Storage,
    rule: CompiledRule,
    lexicon: Lexicon,
    plan: RulePlan | None,
    stories: StorySettings,
    *,
    since: datetime,
    until: datetime,
    max_items: int | None = None,
    stored_stories: bool = False,
    prefilter: bool = False,
) -> RuleHistory:
    """Run ``rule`` over the items first seen from ``since`` to ``until``, as delivery would have paced it.

    ``plan`` is the rule's own channels and pacing (None for a bare query: one
    channel, no pacing). ``max_items`` bounds the work: when more items were
    stored in the period, the period starts later, at the newest ``max_items``.
    ``stored_stories`` takes each item's story as the store placed it on arrival
    instead of replaying the placement over the period and a story window before
    it: the same stories for items placed under the settings in force, in a
    fraction of the time (the dashboard's rule tester answers each keystroke so).
    ``prefilter`` (with ``stored_stories``) reads and evaluates only the items
    the store's full-text index finds the rule's required words in
    (:mod:`monitor.rules.prefilter`); the report is the same.
    """
    cutoff, cut = since, False
    if max_items is not None:
        newest = store.first_seen_of_newest(max_items)
        if newest is not None and newest > cutoff:
            cutoff, cut = newest, True
    # Days before the first stored item are not quiet days, just days we did not watch.
    start = max(cutoff, store.first_seen(cutoff) or until)
    skipped: list[datetime] = []
    clauses = required_words(rule, lexicon) if stored_stories and prefilter else None
    if clauses is not None:
        # Only the items that may hold the rule's words are read and evaluated; the others count as scanned.
        period = store.word_candidates(clauses, cutoff)
        wanted = [
            one.id
            for one in period
            if one.indexed or (one.title is not None and may_contain(clauses, one.title, one.text or ""))
        ]
        history = store.items_by_ids(wanted)
        read = {stored.id for stored in history}
        skipped = [one.first_seen_at for one in period if one.id not in read]
        placed = {stored.id: stored.story_id for stored in history}
        join_order = None
    elif stored_stories:
        history = list(store.iter_items(since=cutoff))
        placed = {stored.id: stored.story_id for stored in history}
        join_order = None
    else:
        # Items from a story window earlier are stories the period's items may have joined.
        history = list(store.iter_items(since=cutoff - stories.window))
        placed = None
        join_order = store.join_order([stored.id for stored in history])
    report = backtest(
        rule, history, lexicon,
        channels=plan.channels if plan else ("console",), policy=plan.policy if plan else None,
        join_order=join_order, story_of=placed,
        since=start, until=until, story_window=stories.window, threshold=stories.threshold, not_matching=skipped,
    )  # fmt: skip
    return RuleHistory(report, start, until, cut)
