"""The storage interface: what the pipeline, delivery, health code and CLI may ask of a store.

Any implementation (SQLite today) must pass ``tests/store_contract.py``. Every
datetime in and out is UTC-aware. Failures raise :class:`~monitor.errors.StorageError`
(or one of its typed children); a lookup of something that does not exist raises
:class:`~monitor.errors.NotFoundError`.

A poll reads a :class:`Snapshot` and writes an :class:`Intent` inside one
:meth:`Storage.transaction`, so that what it decided from is what is there when
it writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Literal, Protocol

from monitor.items import FeedSpec
from monitor.store.records import (
    AlertRecord,
    AlertStatus,
    BackfillMatch,
    EntityCount,
    FeedHistory,
    FeedOutcome,
    FeedState,
    FeedStatus,
    HealthState,
    Instance,
    InstanceStatus,
    Intent,
    ItemSummary,
    KnownItem,
    MatchedItem,
    PendingAlert,
    RuleChannel,
    SearchHit,
    Snapshot,
    StoredItem,
    StoryAlerts,
    Subscription,
    SubscriptionState,
    SurgeRecord,
    WordCandidate,
)


class Storage(Protocol):
    """One news-monitor database. Use from one thread; close it (or use ``with``)."""

    def close(self) -> None: ...
    def __enter__(self) -> Storage: ...
    def __exit__(self, *exc_info: object) -> None: ...

    @property
    def schema_version(self) -> int: ...
    def check_writable(self) -> None:
        """Raise StorageError unless a write could start now; wait at most a second."""

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction (nesting joins the outer one)."""

    # --- feeds
    def sync_feeds(self, feeds: Sequence[FeedSpec], now: datetime) -> None: ...
    def add_feed(self, spec: FeedSpec, now: datetime) -> None: ...
    def add_feeds(self, specs: Sequence[FeedSpec], now: datetime) -> None: ...
    def remove_feed(self, name: str) -> None: ...
    def feeds(self, *, active_only: bool = True) -> list[FeedState]: ...
    def feed(self, name: str) -> FeedState: ...
    def feeds_due(self, now: datetime) -> list[FeedState]: ...
    def feed_tags(self) -> dict[str, tuple[str, ...]]: ...
    def entries_last_week(self, feed_id: int, now: datetime) -> int: ...
    def record_feed_outcome(self, outcome: FeedOutcome) -> None: ...
    def reschedule_feed(self, feed_id: int, at: datetime, reason: str) -> None:
        """Set a feed's next poll and its reason (after its interval changed)."""
    def set_feed_health(self, name: str, state: HealthState) -> None: ...

    # --- instances, feed leases, singletons
    # Several instances may share one database (PostgreSQL). A feed is polled under a lease: the instance that
    # claimed it holds it until the poll's outcome is written (``record_feed_outcome`` or ``write`` with a
    # ``FeedWrite``, which end the lease) or until the lease runs out (the instance died): then it is due for
    # anyone again. At any moment a feed is leased to at most one instance.
    def claim_due_feeds(self, owner: str, now: datetime, lease: timedelta, limit: int) -> list[FeedState]:
        """Lease to ``owner`` until ``now + lease`` up to ``limit`` active feeds due at ``now`` and not under a
        running lease (its own included), most overdue first; those feeds. Atomic: two owners never get one feed."""
    def release_feeds(self, owner: str) -> int:
        """End every feed lease ``owner`` holds (the feeds stay due as they were); how many."""
    def heartbeat(self, instance: Instance, now: datetime) -> None:
        """Register ``instance`` (at its start), or record that it is alive at ``now``."""
    def remove_instance(self, instance_id: str) -> None:
        """An instance stopped cleanly: forget it and end its feed leases."""
    def instances(self, now: datetime, dead_after: timedelta) -> list[InstanceStatus]:
        """The live instances (a heartbeat within ``dead_after`` of ``now``), oldest first, with their feeds
        leased now."""
    def holds_singletons(self) -> bool:
        """Whether this process runs the jobs one instance runs at a time (digest release, feed-health reports,
        retention, WebSub renewals): always on SQLite (one daemon per file); on PostgreSQL while it holds the
        advisory lock, which passes to another instance when this one's session ends."""

    # --- items, stories and the one write path
    def known_items(self, feed_id: int, keys: Sequence[str]) -> dict[str, KnownItem]: ...
    def snapshot(
        self,
        *,
        feed_id: int | None,
        item_keys: Sequence[str],
        story_keys: Iterable[str],
        since: datetime,
        pairs: Iterable[RuleChannel],
        now: datetime,
    ) -> Snapshot: ...
    def write(self, intent: Intent) -> list[int]:
        """Write what a poll or an enrichment decided; the ids of its items, in order."""
    def unenriched_items(self, limit: int = 64) -> list[StoredItem]: ...
    def unenriched_count(self) -> int: ...
    def iter_items(self, since: datetime | None = None, *, after_id: int = 0) -> Iterator[StoredItem]:
        """Stored items first seen at or after ``since`` (and with ids above ``after_id``), in the order they
        were stored."""
    def surge_states(self) -> dict[str, SurgeRecord]:
        """Every spike rule's remembered state (written by ``write``: ``Intent.surges``), by rule name."""
    def rule_matches(self, rule: str, since: datetime) -> list[MatchedItem]:
        """Items first seen after ``since`` that ``rule`` matched on arrival (first fetches left out), oldest first."""
    def join_order(self, item_ids: Sequence[int]) -> dict[int, int]:
        """For items placed in stories: numbers that order them as they were placed."""
    def first_seen(self, since: datetime | None = None) -> datetime | None: ...
    def find_items(self, ref: str) -> list[StoredItem]: ...
    def item(self, item_id: int) -> StoredItem: ...
    def apply_retention(
        self, now: datetime, *, items: timedelta | None, matches: timedelta | None, alerts: timedelta | None
    ) -> dict[str, int]: ...

    # --- the outbox
    # Claims: before sending, a sender claims the rows of one message under its own name for a
    # lease (``claim_alerts``). A row under someone's running lease is not due for anyone else,
    # and cannot be claimed by them; marking it held, sent or failed ends the claim, as does
    # ``release_claims``. A sender that died leaves its rows to be claimed again once the lease
    # ends, so nothing is lost, and two processes never send the same row at once.
    def due_alerts(self, now: datetime, limit: int = 100, *, channel: str | None = None) -> list[PendingAlert]:
        """Pending and held alerts due at ``now`` (of one channel) and not under another's lease, oldest first."""
    def due_channels(self, now: datetime) -> list[str]:
        """The channels that have alerts due at ``now`` and not under a lease."""
    def claim_alerts(self, alert_ids: Sequence[int], owner: str, now: datetime, until: datetime) -> list[int]:
        """Claim for ``owner`` until ``until`` those of the alerts still due at ``now`` and free (or already
        ``owner``'s); the ids claimed. Atomic: two owners never hold the same row."""
    def release_claims(self, owner: str) -> int:
        """End every claim ``owner`` holds, leaving the rows as they were (due again); how many."""
    def mark_held(self, alert_id: int, reason: str | None, release_at: datetime) -> None: ...
    def mark_sent(self, alert_id: int, now: datetime) -> None: ...
    def mark_failed(self, alert_id: int, reason: str, next_attempt_at: datetime | None) -> None: ...
    def retry_alerts(self, now: datetime, *, ids: Sequence[int] = (), dead: bool = False) -> int: ...
    def alert(self, alert_id: int) -> AlertRecord: ...

    # --- search and reports
    def search(self, query: str, *, since: datetime | None = None, limit: int = 20) -> list[SearchHit]: ...
    def word_candidates(self, clauses: Sequence[Sequence[str]], since: datetime) -> list[WordCandidate]:
        """Every item first seen at or after ``since``, by id: whether the full-text index holds every word of
        one of ``clauses`` (plain ASCII words, as the rules fold them) in its title or text, and, for an item
        where it does not, its title and text when they hold characters beyond ASCII (the index may fold such
        words otherwise than the rules do)."""
    def items_by_ids(self, item_ids: Sequence[int]) -> list[StoredItem]:
        """The stored items with these ids (those still stored), in the order they were stored."""
    def feed_status(self) -> list[FeedStatus]: ...
    def feed_histories(self, now: datetime, window: timedelta) -> list[FeedHistory]: ...
    def alert_counts(self) -> dict[AlertStatus, int]: ...
    def list_alerts(
        self, *, status: AlertStatus | None = None, rule: str | None = None, limit: int = 50
    ) -> list[AlertRecord]: ...
    def backfill_matches(self, *, rule: str | None = None, limit: int = 50) -> list[BackfillMatch]:
        """Matches on items of a feed's first fetch (which alert nobody), newest first."""
    def backfill_match_count(self) -> int: ...
    def count(self, table: str) -> int: ...

    # --- what the web dashboard reads (bounded: a LIMIT or a time range on every query)
    def story_outlet_links(self, story_ids: Sequence[int]) -> dict[int, list[tuple[str, str | None]]]:
        """The feeds that ran each story, in the order they ran it, each with the link of its first item of it."""
    def story_alerts(self, *, status: AlertStatus | None = None, limit: int = 200) -> list[StoryAlerts]:
        """The newest ``limit`` outbox rows (of one status), grouped by story, newest story first."""
    def top_entities(self, since: datetime, *, types: Sequence[str] = (), limit: int = 20) -> list[EntityCount]:
        """The entities mentioned by the most items first seen since ``since`` (of these types), most first."""
    def entity_mentions(
        self,
        entities: Sequence[tuple[str, str]],
        since: datetime,
        *,
        bucket: Literal["hour", "day"] = "hour",
        window: timedelta | None = None,
    ) -> dict[tuple[str, str], dict[datetime, int]]:
        """Per (name, type): items first seen in each UTC hour (or day, at its start) since ``since`` that
        mention it; buckets without a mention are absent. With ``window``, an item counts in the bucket it
        happened in: its published time when plausible (not after it was first seen, nor more than ``window``
        before), else its first sight."""
    def entity_items(self, name: str, kind: str, since: datetime, *, limit: int = 50) -> list[ItemSummary]:
        """Items first seen since ``since`` that mention this entity, newest first."""
    def feed_items_per_day(self, since: datetime, *, window: timedelta | None = None) -> dict[str, dict[date, int]]:
        """Per feed name: items first seen on each UTC day since ``since`` (days without one are absent); with
        ``window``, each on the day it happened (as ``entity_mentions`` says)."""
    def feed_health_states(self) -> dict[str, HealthState]:
        """Each feed's health as last reported (ok, failing, silent)."""
    def first_seen_of_newest(self, count: int) -> datetime | None:
        """When the ``count``-th newest stored item was first seen; None when fewer are stored."""

    # --- WebSub subscriptions
    def subscriptions(self, feed_id: int | None = None) -> list[Subscription]:
        """Every subscription (of one feed), oldest first."""

    def subscription(self, token: str) -> Subscription:
        """The subscription whose callback path ends in ``token``; NotFoundError otherwise."""

    def add_subscription(
        self, feed_id: int, *, hub: str, topic: str, token: str, secret: str, now: datetime
    ) -> Subscription:
        """A new subscription, ``requested`` at ``now``; ConflictError if the token is taken."""

    def mark_subscription(
        self,
        token: str,
        state: SubscriptionState,
        now: datetime,
        *,
        lease_until: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """One step of a subscription's life: ``requested`` or ``unsubscribing`` (asked at ``now``),
        ``active`` (verified at ``now``, pushed until ``lease_until``), ``denied`` or ``failed`` (``error``).
        NotFoundError for an unknown token."""

    def record_push(self, token: str, now: datetime) -> None:
        """A hub pushed content for this subscription at ``now``."""

    def remove_subscription(self, token: str) -> None:
        """Forget a subscription (no error when it is already gone)."""
