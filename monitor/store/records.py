"""The records that cross the storage boundary, both ways. Plain data, no I/O.

Reads come back as typed records (UTC-aware datetimes, enums, tuples), never
as dicts of ISO strings. Writes go in as an :class:`Intent`: what a poll or an
enrichment decided, complete, so that the store only writes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from monitor.items import Item, Mention

# Marks around the words a search matched; control characters never occur in stored feed text.
HIGHLIGHT_START = "\x02"
HIGHLIGHT_END = "\x03"


class AlertStatus(StrEnum):
    """The life of an outbox row.

    pending: due for sending at ``next_attempt_at`` (first attempt or a retry).
    held: waiting for a digest (or the end of quiet hours) until ``next_attempt_at``.
    sent: a channel took it.  dead: given up after the retry window.
    suppressed: never to be sent (a repeat of a story already alerted); kept with its reason.
    """

    PENDING = "pending"
    HELD = "held"
    SENT = "sent"
    DEAD = "dead"
    SUPPRESSED = "suppressed"


FeedSource = Literal["config", "cli"]
HealthState = Literal["ok", "failing", "silent"]


# --- feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedState:
    """A feed as a poll needs it."""

    id: int
    name: str
    url: str
    etag: str | None
    last_modified: str | None
    first_fetch_done: bool
    error_count: int
    next_poll_at: datetime | None
    source: FeedSource = "config"  # "config": governed by monitor.yaml; "cli": added with `feeds add`/`import`
    interval: timedelta | None = None
    tags: tuple[str, ...] = ()
    alert_first_fetch: bool = False
    title: str | None = None  # as the feed itself calls itself
    last_polled_at: datetime | None = None
    body_hash: str | None = None  # digest of the document last parsed (see FeedWrite.body_hash)


@dataclass(frozen=True)
class FeedStatus:
    """A feed as ``status`` shows it."""

    name: str
    url: str
    active: bool
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    error_count: int
    next_poll_at: datetime | None
    next_poll_reason: str | None
    items: int

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class FeedHistory:
    """What the store knows about a feed's recent life (for feed health)."""

    name: str
    failing_since: datetime | None  # first failure of the current run of failures
    last_error: str | None
    last_item_at: datetime | None  # when its newest item was first seen
    items_in_window: int  # items published (else first seen) within the window asked for
    state: HealthState  # as last reported


@dataclass(frozen=True)
class FeedOutcome:
    """A poll that stored no items: the feed was unchanged (``error`` None) or failed."""

    feed_id: int
    polled_at: datetime
    next_poll_at: datetime
    next_poll_reason: str
    error: str | None = None


# --- WebSub subscriptions ------------------------------------------------------------

# requested: asked of the hub, its verification not seen yet (a renewal too: the lease still counts)
# active: the hub verified our intent; it pushes until ``lease_until``
# denied: the hub refused (``last_error`` says why)   failed: the hub could not be asked, or answered an error
# unsubscribing: asked the hub to stop; the row goes once the hub verifies that
SubscriptionState = Literal["requested", "active", "denied", "failed", "unsubscribing"]


@dataclass(frozen=True)
class Subscription:
    """One WebSub subscription of a feed to a hub. ``token`` is its callback's last path segment."""

    id: int
    feed_id: int
    feed: str
    feed_active: bool
    token: str
    hub: str
    topic: str
    secret: str = field(repr=False)
    state: SubscriptionState
    requested_at: datetime
    verified_at: datetime | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    last_push_at: datetime | None = None


# --- items and stories -----------------------------------------------------------------


@dataclass(frozen=True)
class KnownItem:
    """A stored item of a feed, as a poll compares a fresh copy with it."""

    id: int
    content_hash: str
    story_id: int  # the item's own id when it started its story
    placed: bool = True  # False: stored from a first fetch and not enriched yet, so in no story yet


@dataclass(frozen=True)
class StoryInfo:
    """What finds an item's story: its canonical link, text fingerprint and lookup keys."""

    link_key: str | None
    fingerprint: bytes
    keys: tuple[str, ...]


@dataclass(frozen=True)
class StoryCandidate:
    """An earlier item sharing a lookup key with a new one."""

    story_id: int
    item_id: int
    link_key: str | None
    fingerprint: bytes | None
    seen_at: datetime


@dataclass(frozen=True)
class StoredItem:
    id: int
    feed: str
    item: Item
    first_seen_at: datetime
    mentions: tuple[Mention, ...] = ()
    story_id: int = 0  # the item's own id when it started its story
    story: StoryInfo | None = None  # None until the item was enriched
    backfill: bool = False  # arrived in a first fetch, which alerts nobody
    feed_tags: tuple[str, ...] = ()
    feed_id: int = 0


@dataclass(frozen=True)
class SearchHit:
    item_id: int
    feed: str
    title: str
    link: str | None
    published_at: datetime | None
    first_seen_at: datetime
    snippet: str  # matched words between HIGHLIGHT_START and HIGHLIGHT_END
    title_marked: str


@dataclass(frozen=True)
class WordCandidate:
    """An item of a period as the full-text index sees some words (``Storage.word_candidates``)."""

    id: int
    first_seen_at: datetime
    indexed: bool  # the index holds every word of one clause in its title or text
    title: str | None = None  # when not, and it has characters beyond ASCII (which the index may fold otherwise)
    text: str | None = None


# --- the outbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingAlert:
    """An outbox row that is due, joined with what rendering needs."""

    id: int
    rule: str
    channel: str
    attempts: int
    created_at: datetime
    feed: str
    title: str
    link: str | None
    text: str
    published_at: datetime | None
    hits: tuple[dict[str, Any], ...] = ()
    status: AlertStatus = AlertStatus.PENDING  # or HELD: released now as part of a digest
    story_id: int = 0
    due_since: datetime | None = None  # when it first became due; the retry window counts from here
    outlets: tuple[str, ...] = ()  # the other feeds that ran the story
    outlet_links: tuple[tuple[str, str | None], ...] = ()  # those feeds, each with its link to the story
    item_id: int = 0  # the item that matched (alerts of several rules on one item share it)
    kind: AlertKind = "match"  # "surge": a spike rule's surge; ``payload`` holds what its message says
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class AlertRecord:
    """An outbox row as ``alerts list`` shows it."""

    id: int
    status: AlertStatus
    reason: str | None
    rule: str
    channel: str
    item_id: int
    story_id: int
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None
    feed: str
    title: str
    link: str | None
    outlets: tuple[str, ...] = ()
    kind: str = "match"  # "surge": a spike rule's surge; title, link and summary are then the surge's
    summary: str | None = None  # a surge: the count against the usual rate

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def alert_record_of_kind(record: AlertRecord, kind: str, payload: str | dict[str, Any] | None) -> AlertRecord:
    """An outbox row as shown: a surge's row shows the surge (what surged, the count against the usual rate, its
    top story's link), not the newest item that counted."""
    if kind != "surge":
        return record
    data = json.loads(payload) if isinstance(payload, str) else payload or {}
    stories = data.get("stories") or [{}]
    return replace(
        record,
        kind=kind,
        title=str(data.get("title") or f"Surge: {record.rule}"),
        link=stories[0].get("link"),
        summary=data.get("summary"),
        outlets=(),
    )


@dataclass(frozen=True)
class BackfillMatch:
    """A rule's match on an item of a feed's first fetch: stored, alerted to nobody (it was old news)."""

    item_id: int
    rule: str
    feed: str
    title: str
    link: str | None
    published_at: datetime | None
    first_seen_at: datetime
    matched_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


# --- what the dashboard reads -------------------------------------------------------------


@dataclass(frozen=True)
class StoryAlerts:
    """The outbox rows of one story, newest first, with every outlet that ran it (and its link)."""

    story_id: int
    alerts: tuple[AlertRecord, ...]
    outlet_links: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class EntityCount:
    """An entity (canonical name and type) and how many stored items mention it."""

    name: str
    type: str
    items: int


@dataclass(frozen=True)
class ItemSummary:
    """A stored item as a list shows it."""

    item_id: int
    feed: str
    title: str
    link: str | None
    published_at: datetime | None
    first_seen_at: datetime


# --- what a decision reads ---------------------------------------------------------------

RuleChannel = tuple[str, str]
# match: an item matched a rule (the row's item and story are the alert's); surge: a spike rule's stories
# surged (the row's item is the newest that counted; its story id is 0, so it is a message of its own).
AlertKind = Literal["match", "surge"]


@dataclass(frozen=True)
class AlertHistory:
    """What the outbox knows that pacing needs, for some rule/channel pairs and stories.

    ``instant`` holds, per (rule, channel), the creation times of the alerts let
    through for instant delivery (pending, sent or dead; not held, not
    suppressed) within the last hour. ``last_for_story`` holds, per (rule,
    channel, story), when that story was last alerted there: the sent time of a
    sent alert, the creation time of one still pending or held.
    """

    instant: dict[RuleChannel, tuple[datetime, ...]] = field(default_factory=dict)
    last_for_story: dict[tuple[str, str, int], datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    """Everything a decision about one batch of items reads from storage."""

    known: dict[str, KnownItem] = field(default_factory=dict)  # by item key, for the batch's feed
    candidates: dict[str, tuple[StoryCandidate, ...]] = field(default_factory=dict)  # by story lookup key
    history: AlertHistory = field(default_factory=AlertHistory)
    alerted_items: frozenset[tuple[int, str, str]] = frozenset()  # (item id, rule, channel) already in the outbox


# --- what a decision writes ---------------------------------------------------------------


@dataclass(frozen=True)
class StoryJoin:
    """The story an item belongs to: a stored story, or the story of an earlier item of the batch."""

    story_id: int | None = None
    batch_index: int | None = None
    reason: str | None = None  # "link" or "text"

    def __post_init__(self) -> None:
        if (self.story_id is None) == (self.batch_index is None):
            raise ValueError("a story join names a stored story or an earlier item of the batch, not both")


@dataclass(frozen=True)
class MatchWrite:
    rule: str
    hits: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class AlertWrite:
    """A new outbox row, decided: PENDING (send now), HELD (until release_at) or SUPPRESSED."""

    rule: str
    channel: str
    status: AlertStatus
    reason: str | None = None
    release_at: datetime | None = None


@dataclass(frozen=True)
class ItemWrite:
    """One item of a batch: stored (``item_id`` None: a new one) with all that was decided about it.

    ``enriched`` False stores the item now and leaves its entities, matches and
    story for an enrichment intent later.
    """

    feed_id: int
    item: Item
    item_id: int | None = None
    enriched: bool = True
    backfill: bool = False
    story: StoryInfo | None = None
    join: StoryJoin | None = None
    mentions: tuple[Mention, ...] = ()
    matches: tuple[MatchWrite, ...] = ()
    alerts: tuple[AlertWrite, ...] = ()


@dataclass(frozen=True)
class FeedWrite:
    """A successful poll's news about its feed."""

    feed_id: int
    polled_at: datetime
    next_poll_at: datetime
    next_poll_reason: str
    etag: str | None
    last_modified: str | None
    title: str | None
    body_hash: str | None = None  # digest of the document parsed: the same bytes again need no parse


@dataclass(frozen=True)
class SurgeRecord:
    """A spike rule's remembered state (see :class:`monitor.rules.surge.SurgeState`)."""

    rule: str
    query: str
    surging: bool = False
    checked_at: datetime | None = None
    fired_at: datetime | None = None
    count: int = 0
    usual: float = 0.0
    # Since when every new item is matched against this query on arrival (its matches rows are complete).
    matching_since: datetime | None = None


@dataclass(frozen=True)
class MatchedItem:
    """A stored item a rule matched on arrival, as a surge count needs it."""

    item_id: int
    story_id: int
    first_seen_at: datetime
    feed: str
    title: str
    link: str | None


@dataclass(frozen=True)
class SurgeAlertWrite:
    """A new surge outbox row, decided like any alert: PENDING, HELD (until release_at) or SUPPRESSED."""

    channel: str
    status: AlertStatus
    item_id: int  # the newest item that counted towards the surge
    payload: dict[str, Any]
    reason: str | None = None
    release_at: datetime | None = None


@dataclass(frozen=True)
class SurgeWrite:
    """A spike rule checked: its new state, and the alerts of a surge that fired (none otherwise)."""

    state: SurgeRecord
    alerts: tuple[SurgeAlertWrite, ...] = ()


@dataclass(frozen=True)
class Intent:
    """What one poll (``feed`` set), one enrichment batch or one surge check decided; written in one transaction."""

    now: datetime
    items: tuple[ItemWrite, ...] = ()
    feed: FeedWrite | None = None
    surges: tuple[SurgeWrite, ...] = ()

    @property
    def alerts(self) -> tuple[AlertWrite, ...]:
        return tuple(alert for write in self.items for alert in write.alerts)


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else list(value) if isinstance(value, tuple) else value
        for key, value in data.items()
    }


# --- instances of one database ---------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One running daemon: the name its feed leases go under (``id``), where it runs, since when."""

    id: str
    host: str
    pid: int
    started_at: datetime
    version: str


@dataclass(frozen=True)
class InstanceStatus:
    """A live instance as ``status`` shows it: its last heartbeat and how many feeds it holds leased now."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    version: str
    feeds_leased: int

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))
