"""What each page shows, read from the store: alerts by story, entities, feeds, one item.

Each ``*_page`` function runs in the reader's thread with its own store and
returns the template's context. Feed text goes to the templates as it is
stored (Jinja2 escapes it there); links only through :func:`link`, which lets
through http(s) alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from markupsafe import Markup

from monitor.alerts.markup import Segment, excerpt, highlight, safe_link
from monitor.backtest import document_of
from monitor.durations import format_duration
from monitor.rules.document import Hit
from monitor.rules.evaluate import CompiledRule, explain
from monitor.store import AlertRecord, AlertStatus, Storage, StoryAlerts
from monitor.web.charts import Bar, bar_chart, sparkline
from monitor.web.surges import SurgeSource, mark_indexes

Window = Literal["day", "week"]
WINDOWS: dict[str, timedelta] = {"day": timedelta(days=1), "week": timedelta(days=7)}
ALERT_ROWS = 200  # outbox rows on the alerts page, newest first
ENTITY_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("people", "People", ("PERSON",)),
    ("organisations", "Organisations", ("ORG",)),
    ("places", "Places", ("GPE", "LOC")),
)
ENTITIES_PER_GROUP = 10
ENTITY_ITEMS = 100
FEED_DAYS = 14  # days of items per feed in the sparkline
ITEM_RULES = 500  # rules tried on one item, at most


def link(url: str | None) -> str | None:
    """A link a reader may follow: http(s) only; anything else is shown as text, not linked."""
    return safe_link(url)


@dataclass(frozen=True)
class Clock:
    """Times as the dashboard shows them: in the config's display_timezone."""

    zone: ZoneInfo

    def __call__(self, moment: datetime | None) -> str:
        if moment is None:
            return "never"
        return moment.astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")


# --- alerts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertRow:
    id: int
    rule: str
    channel: str
    status: str
    state: str  # in words: "sent 2026-11-27 09:31 UTC", "held until ...", "dead after 5 attempts: ..."
    retry_action: str | None  # the POST path for a dead alert


@dataclass(frozen=True)
class StoryView:
    story_id: int
    title: str
    item_id: int
    link: str | None
    feed: str
    created_at: str
    rules: tuple[str, ...]
    outlets: tuple[tuple[str, str | None], ...]  # each feed that ran it, with its link when safe to follow
    alerts: tuple[AlertRow, ...]
    summary: str | None = None  # a surge alert: the count against the usual rate


def alert_state(alert: AlertRecord, when: Clock) -> str:
    status = alert.status
    if status == AlertStatus.SENT:
        return f"sent {when(alert.sent_at)}"
    if status == AlertStatus.HELD:
        why = f" ({alert.reason})" if alert.reason else ""
        return f"held until {when(alert.next_attempt_at)}{why}"
    if status == AlertStatus.SUPPRESSED:
        return f"suppressed: {alert.reason or 'no reason recorded'}"
    if status == AlertStatus.DEAD:
        tries = f"{alert.attempts} attempt" + ("" if alert.attempts == 1 else "s")
        return f"dead after {tries}: {alert.last_error or 'no error recorded'}"
    if alert.attempts:
        return f"retrying at {when(alert.next_attempt_at)}; last error: {alert.last_error or 'none recorded'}"
    return f"pending, due {when(alert.next_attempt_at)}"


def retry_path(alert_id: int) -> str:
    return f"/alerts/{alert_id}/retry"


def story_view(story: StoryAlerts, when: Clock) -> StoryView:
    first = story.alerts[-1]  # the oldest row of the story shown names its item
    newest = story.alerts[0]
    rows = tuple(
        AlertRow(
            alert.id,
            alert.rule,
            alert.channel,
            str(alert.status),
            alert_state(alert, when),
            retry_path(alert.id) if alert.status == AlertStatus.DEAD else None,
        )
        for alert in story.alerts
    )
    outlets = tuple((feed, link(url)) for feed, url in story.outlet_links) or ((first.feed, link(first.link)),)
    return StoryView(
        story.story_id,
        first.title,
        first.item_id,
        link(first.link),
        first.feed,
        when(newest.created_at),
        tuple(dict.fromkeys(alert.rule for alert in story.alerts)),
        outlets,
        rows,
        next((alert.summary for alert in story.alerts if alert.summary), None),
    )


def alerts_page(store: Storage, *, status: AlertStatus | None, when: Clock) -> dict[str, Any]:
    stories = store.story_alerts(status=status, limit=ALERT_ROWS)
    counts = store.alert_counts()
    return {
        "stories": [story_view(story, when) for story in stories],
        "counts": {str(state): counts.get(state, 0) for state in AlertStatus},
        "status": str(status) if status else "",
        "row_limit": ALERT_ROWS,
        "shown_rows": sum(len(story.alerts) for story in stories),
    }


# --- entities -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EntityView:
    name: str
    type: str
    items: int
    chart: Markup


def _buckets(now: datetime, window: Window) -> list[datetime]:
    if window == "day":
        last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return [last - timedelta(hours=hours) for hours in range(23, -1, -1)]
    today = datetime.combine(now.astimezone(UTC).date(), datetime.min.time(), UTC)
    return [today - timedelta(days=days) for days in range(6, -1, -1)]


def entities_page(
    store: Storage, *, window: Window, now: datetime, surges: SurgeSource | None = None
) -> dict[str, Any]:
    buckets = _buckets(now, window)
    since = buckets[0]
    fired = [one for one in surges(store, since) if one.at <= now] if surges is not None else []
    groups = []
    every: list[tuple[str, str]] = []
    found = {}
    for key, label, types in ENTITY_GROUPS:
        top = store.top_entities(since, types=types, limit=ENTITIES_PER_GROUP)
        found[key] = top
        every += [(entity.name, entity.type) for entity in top]
    series = store.entity_mentions(
        every, since, bucket="hour" if window == "day" else "day", window=timedelta(days=1 if window == "day" else 7)
    )
    step = "hour" if window == "day" else "day"
    for key, label, _ in ENTITY_GROUPS:
        views = []
        for entity in found[key]:
            counts = series.get((entity.name, entity.type), {})
            values = [counts.get(bucket, 0) for bucket in buckets]
            marks = mark_indexes(fired, entity.name, entity.type, buckets)
            title = f"{entity.name}: items per {step}, last {window}"
            views.append(
                EntityView(entity.name, entity.type, entity.items, sparkline(values, title=title, marks=marks))
            )
        groups.append({"key": key, "label": label, "entities": views})
    return {"window": window, "groups": groups, "step": step, "surges": fired}


def entity_items_page(store: Storage, *, name: str, kind: str, window: Window, now: datetime) -> dict[str, Any]:
    items = store.entity_items(name, kind, now - WINDOWS[window], limit=ENTITY_ITEMS)
    return {"name": name, "type": kind, "window": window, "items": items, "limit": ENTITY_ITEMS}


# --- feeds --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedView:
    name: str
    url: str | None  # linked only when http(s)
    active: bool
    health: str
    last_success: str
    last_error: str | None
    last_error_at: str
    next_poll: str
    next_poll_reason: str | None
    items: int
    items_recent: int
    chart: Markup


def feeds_page(store: Storage, *, now: datetime, when: Clock) -> dict[str, Any]:
    from monitor.redact import redact_url

    days = [now.astimezone(UTC).date() - timedelta(days=n) for n in range(FEED_DAYS - 1, -1, -1)]
    per_day = store.feed_items_per_day(
        datetime.combine(days[0], datetime.min.time(), UTC), window=timedelta(days=FEED_DAYS)
    )
    health = store.feed_health_states()
    views = []
    for feed in store.feed_status():
        counts: Mapping[date, int] = per_day.get(feed.name, {})
        values = [counts.get(day, 0) for day in days]
        shown_url = redact_url(feed.url)
        views.append(
            FeedView(
                name=feed.name,
                url=shown_url,
                active=feed.active,
                health=health.get(feed.name, "ok") if feed.active else "removed",
                last_success=when(feed.last_success_at),
                last_error=feed.last_error,
                last_error_at=when(feed.last_error_at),
                next_poll=when(feed.next_poll_at) if feed.active else "not polled",
                next_poll_reason=feed.next_poll_reason if feed.active else None,
                items=feed.items,
                items_recent=sum(values),
                chart=sparkline(values, title=f"{feed.name}: items per day, last {FEED_DAYS} days"),
            )
        )
    return {"feeds": views, "days": FEED_DAYS}


# --- one item -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleWhy:
    name: str
    query: str
    hits: tuple[dict[str, Any], ...]


@dataclass
class ItemView:
    id: int
    feed: str
    title: tuple[Segment, ...]
    text: tuple[Segment, ...]
    link: str | None
    raw_link: str | None
    published: str
    first_seen: str
    entities: list[tuple[str, str]] = field(default_factory=list)
    outlets: list[tuple[str, str | None]] = field(default_factory=list)
    matched: list[RuleWhy] = field(default_factory=list)


def item_page(
    store: Storage, item_id: int, *, rules: Sequence[CompiledRule], lexicon: Any, when: Clock
) -> dict[str, Any]:
    """One stored item, explained as `news-monitor explain` does: each rule that matches it, with its hits."""
    stored = store.item(item_id)
    document = document_of(stored)
    matched: list[RuleWhy] = []
    spans: dict[str, list[tuple[int, int]]] = {"title": [], "body": []}
    for rule in rules[:ITEM_RULES]:
        hits = explain(rule, document, lexicon)
        if hits is None:
            continue
        matched.append(RuleWhy(rule.name, rule.query, tuple(hit.to_dict() for hit in hits)))
        for hit in hits:
            _add_span(spans, hit)
    item = stored.item
    outlets = store.story_outlet_links([stored.story_id]).get(stored.story_id, [])
    view = ItemView(
        id=stored.id,
        feed=stored.feed,
        title=highlight(item.title, spans["title"]),
        text=highlight(item.text, spans["body"]),
        link=link(item.link),
        raw_link=item.link,
        published=when(item.published_at),
        first_seen=when(stored.first_seen_at),
        entities=sorted({(m.canonical, m.type) for m in stored.mentions}),
        outlets=[(feed, link(url)) for feed, url in outlets if feed != stored.feed],
        matched=matched,
    )
    return {"item": view}


def _add_span(spans: dict[str, list[tuple[int, int]]], hit: Hit) -> None:
    if hit.field in spans:
        spans[hit.field].append((hit.start, hit.end))


def match_segments(title: str, text: str, hits: Sequence[Hit]) -> tuple[tuple[Segment, ...], tuple[Segment, ...]]:
    """A match as a list shows it: the title and an excerpt of the body, hits highlighted."""
    spans: dict[str, list[tuple[int, int]]] = {"title": [], "body": []}
    for hit in hits:
        _add_span(spans, hit)
    return highlight(title, spans["title"]), excerpt(text, spans["body"])


def bars_per_day(per_day: Mapping[date, int], *, marks: Sequence[date] = ()) -> list[Bar]:
    return [Bar(day.isoformat(), count, day in marks) for day, count in sorted(per_day.items())]


def day_chart(per_day: Mapping[date, int], title: str) -> Markup:
    return bar_chart(bars_per_day(per_day), title=title, element_id="matches-chart")


def happened_at(published_at: datetime | None, first_seen_at: datetime, window: timedelta) -> datetime:
    """When an item's story happened: its published time when plausible (not after it was first seen, nor
    more than ``window`` before), else when it was first seen."""
    if published_at is not None and first_seen_at - window <= published_at <= first_seen_at:
        return published_at
    return first_seen_at


def slot_chart(moments: Sequence[datetime], *, now: datetime, period: timedelta, title: str) -> Markup:
    """Counts of ``moments`` in every slot of the period up to ``now``, zeros included: UTC hours for a period
    of a day or less (24 slots), else UTC days (7 for a week, 30 for 30 days); moments outside are left out."""
    utc = now.astimezone(UTC)
    if period <= timedelta(days=1):
        last = utc.replace(minute=0, second=0, microsecond=0)
        hours = max(round(period / timedelta(hours=1)), 1)
        starts = [last - timedelta(hours=n) for n in range(hours - 1, -1, -1)]
        size, label = timedelta(hours=1), "%m-%d %H:00"
    else:
        today = datetime.combine(utc.date(), datetime.min.time(), UTC)
        starts = [today - timedelta(days=n) for n in range(max(period.days, 1) - 1, -1, -1)]
        size, label = timedelta(days=1), "%Y-%m-%d"
    counts = [0] * len(starts)
    for moment in moments:
        index = int((moment.astimezone(UTC) - starts[0]) // size)
        if 0 <= index < len(starts):
            counts[index] += 1
    bars = [Bar(start.strftime(label), count) for start, count in zip(starts, counts, strict=True)]
    return bar_chart(bars, title=title, element_id="matches-chart")


def ago(delta: timedelta) -> str:
    return format_duration(delta)
