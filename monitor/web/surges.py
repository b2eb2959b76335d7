"""Surges on the entities page: when each spike rule fired, and which entity chart it belongs on.

A spike rule's surges are its surge alerts in the outbox (one row per channel,
written together when it fired). A surge is marked on an entity's chart only
when the rule's query is that one entity: a single ``person:``/``org:``/
``place:``/``entity:`` term naming exactly one known entity (entities.yaml).
Any other query (words, several entities, a name not known) may count items
of many charted names at once, so its surges are listed, not marked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from monitor.rules.document import ENTITY_TYPES, Lexicon
from monitor.rules.evaluate import CompiledRule, _EntityTerm, _plan_for
from monitor.store import Storage

if TYPE_CHECKING:
    from monitor.assembly import Setup

MAX_SURGES_PER_RULE = 200  # outbox rows read per spike rule


@dataclass(frozen=True)
class SurgeFired:
    rule: str
    query: str
    at: datetime  # when it fired
    summary: str | None  # the count against the usual rate
    entity: str | None  # the one known entity the query names (its chart gets the mark), else None
    types: frozenset[str] | None = None  # the mention types the query's scope accepts (None: any)

    def marks(self, name: str, kind: str) -> bool:
        return self.entity == name and (self.types is None or kind in self.types)


SurgeSource = Callable[[Storage, datetime], Sequence[SurgeFired]]


def surge_source(setup: Callable[[], Setup]) -> SurgeSource:
    """The surges fired since a moment, for the spike rules of the config in force."""

    def fired(store: Storage, since: datetime) -> list[SurgeFired]:
        return surges_fired(store, setup(), since)

    return fired


def surges_fired(store: Storage, setup: Setup, since: datetime) -> list[SurgeFired]:
    """Every surge of the config's spike rules fired at or after ``since``, newest first."""
    book = setup.rulebook
    found: list[SurgeFired] = []
    for name in sorted(book.surges):
        rule = book.compiled.get(name)
        if rule is None:
            continue
        entity, types = entity_of(rule, book.lexicon)
        seen: set[datetime] = set()
        for alert in store.list_alerts(rule=name, limit=MAX_SURGES_PER_RULE):
            if alert.kind != "surge" or alert.created_at < since or alert.created_at in seen:
                continue  # one surge is one row per channel, all written at once
            seen.add(alert.created_at)
            found.append(SurgeFired(name, rule.query, alert.created_at, alert.summary, entity, types))
    found.sort(key=lambda one: one.at, reverse=True)
    return found


def entity_of(rule: CompiledRule, lexicon: Lexicon) -> tuple[str | None, frozenset[str] | None]:
    """The one known entity a query is, with the mention types its scope accepts; (None, None) otherwise."""
    root = _plan_for(rule, lexicon).root
    if isinstance(root, _EntityTerm) and len(root.known) == 1:
        [known] = root.known
        return known.name, ENTITY_TYPES[root.scope]
    return None, None


def mark_indexes(fired: Sequence[SurgeFired], name: str, kind: str, buckets: Sequence[datetime]) -> list[int]:
    """The buckets (starts, oldest first, equal steps) in which a surge of this entity fired."""
    if not buckets:
        return []
    step = buckets[1] - buckets[0] if len(buckets) > 1 else None
    marks = set()
    for one in fired:
        if not one.marks(name, kind) or one.at < buckets[0]:
            continue
        index = len(buckets) - 1 if step is None else min(int((one.at - buckets[0]) // step), len(buckets) - 1)
        marks.add(index)
    return sorted(marks)
