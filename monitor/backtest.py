"""What a rule would have done over stored history: matches per day, alerts sent.

Pure: the caller reads the items (``Store.iter_items``) and passes them in, with
any times it wants the report to cover.

Alerts are counted the way delivery de-duplicates them, once per story and
channel. Until stories are clustered by content, a story here is a group of
matching items that share a normalised link (no scheme, no ``www.``, no
tracking parameters such as ``utm_*``, no fragment or trailing slash), or
that carry the same normalised title (case, accents and punctuation ignored)
within ``same_title_within`` of the story's previous copy with that title. The
window keeps recurring headlines ("Morning briefing") from folding a month of
distinct alerts into one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from monitor.items import Item
from monitor.rules.match import CompiledRule, Document, Hit, Lexicon, explain
from monitor.rules.text import words
from monitor.stories import canonical_link

if TYPE_CHECKING:
    from monitor.store import StoredItem


@dataclass(frozen=True)
class BacktestMatch:
    """A stored item the rule matches, why, and the story it belongs to."""

    item_id: int
    feed: str
    item: Item
    first_seen_at: datetime
    hits: list[Hit]
    story_key: str

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
            "story": self.story_key,
            "why": [hit.to_dict() for hit in self.hits],
        }


@dataclass
class BacktestReport:
    scanned: int
    matches: list[BacktestMatch]  # oldest first
    per_day: dict[date, int]  # matches per UTC day first seen; every day of the range, zeros included
    stories: int  # distinct stories among the matches
    alerts: int  # stories times channels: what delivery would have sent

    def sample(self, limit: int) -> list[BacktestMatch]:
        """The ``limit`` most recent matches, newest first."""
        return self.matches[::-1][: max(limit, 0)]

    def to_dict(self, sample: int) -> dict[str, object]:
        return {
            "scanned": self.scanned,
            "matched": len(self.matches),
            "stories": self.stories,
            "alerts": self.alerts,
            "per_day": {day.isoformat(): count for day, count in self.per_day.items()},
            "sample": [match.to_dict() for match in self.sample(sample)],
        }


def backtest(
    rule: CompiledRule,
    items: Iterable[StoredItem],
    lexicon: Lexicon,
    *,
    feed_tags: Callable[[str], Sequence[str]] = lambda feed: (),
    channels: int = 1,
    since: datetime | None = None,
    until: datetime | None = None,
    same_title_within: timedelta = timedelta(days=2),
) -> BacktestReport:
    """Run ``rule`` over stored items as the pipeline would have when they arrived.

    ``feed_tags`` gives a feed's configured tags (rules see them as item tags).
    ``channels`` is how many channels the rule notifies. ``since``/``until``
    widen the per-day range to the whole period asked about, so quiet days at
    either end show as zeros.
    """
    found: list[tuple[StoredItem, list[Hit]]] = []
    days = [_utc_day(t) for t in (since, until) if t is not None]
    scanned = 0
    for stored in items:
        scanned += 1
        days.append(_utc_day(stored.first_seen_at))
        hits = explain(rule, document_of(stored, feed_tags(stored.feed)), lexicon)
        if hits is not None:
            found.append((stored, hits))
    found.sort(key=lambda pair: (pair[0].first_seen_at, pair[0].id))
    keys = story_keys([stored for stored, _ in found], same_title_within)
    matches = [
        BacktestMatch(stored.id, stored.feed, stored.item, stored.first_seen_at, hits, key)
        for (stored, hits), key in zip(found, keys, strict=True)
    ]
    per_day = _empty_days(min(days), max(days)) if days else {}
    for match in matches:
        per_day[_utc_day(match.first_seen_at)] += 1
    stories = len(set(keys))
    return BacktestReport(scanned, matches, per_day, stories, stories * channels)


def document_of(stored: StoredItem, feed_tags: Sequence[str] = ()) -> Document:
    """A stored item as rules see it; the same Document the pipeline builds on arrival."""
    return Document.from_item(stored.item, stored.feed, stored.mentions, feed_tags)


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


# --- stories ------------------------------------------------------------------


def story_keys(items: Sequence[StoredItem], same_title_within: timedelta = timedelta(days=2)) -> list[str]:
    """For items oldest first, the key of the story each belongs to.

    A story is named after its oldest item, ``item:<id>``, as the store names
    a story after its first item. (A normalised title cannot name it: a
    recurring headline starts a new story after the window.)
    """
    parent = list(range(len(items)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = root(i), root(j)
        parent[max(a, b)] = min(a, b)  # the oldest item stays the root

    first_with_link: dict[str, int] = {}
    last_with_title: dict[str, tuple[int, datetime]] = {}
    for i, stored in enumerate(items):
        link, title = link_key(stored.item.link), title_key(stored.item.title)
        if link is not None:
            join(i, first_with_link.setdefault(link, i))
        if title is not None:
            previous = last_with_title.get(title)
            if previous is not None and stored.first_seen_at - previous[1] <= same_title_within:
                join(i, previous[0])
            last_with_title[title] = (i, stored.first_seen_at)
    return [f"item:{items[root(i)].id}" for i in range(len(items))]


def link_key(link: str | None) -> str | None:
    """The link with tracking, mirrors and AMP variants gone (the story detector's canonical link)."""
    return canonical_link(link)


def title_key(title: str) -> str | None:
    """A title with case, accents and punctuation gone; None if nothing is left."""
    return " ".join(words(title)) or None


def _utc_day(moment: datetime) -> date:
    """The UTC calendar day of a time; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(UTC).date()


def _empty_days(first: date, last: date) -> dict[date, int]:
    return {first + timedelta(days=n): 0 for n in range((last - first).days + 1)}
