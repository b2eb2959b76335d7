"""One poll of one feed, end to end. This module orders the calls; it decides nothing.

    store: feed due | fetch | parse | store: known items | fresh_items
      | entities + rules + story fingerprints (CPU thread)
      | ONE transaction: store.snapshot | decide.decide_poll | store.write

The deciding is done elsewhere and is pure: ``feeds.schedule`` says when to
poll next, ``decide`` which items are fresh, which story each joins and what
becomes of each alert (with ``stories``, ``rules`` and ``alerts.pacing``).
Items of a feed's first fetch alert nobody; they are stored at once and get
their entities, matches and stories later (:func:`enrich_backlog`), through
the same decide-then-write path, so they never delay the analysis of new items.

:meth:`Runtime.poll` is the only way to poll a feed, for the daemon and
``poll --once`` alike: it bounds the polls in flight, never polls one feed
twice at once, and records any failure on the feed, whatever its cause.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from monitor.assembly import Setup
from monitor.decide import Analysed, Enrichable, decide_enrichment, decide_poll, fresh_items, new_this_week, summarise
from monitor.decide import story_info as make_story_info
from monitor.durations import format_duration
from monitor.errors import FeedError, ParseError, RetrieveError
from monitor.feeds import schedule, websub
from monitor.feeds.addresses import private_access
from monitor.feeds.clean import clean_line
from monitor.feeds.fetch import Fetched, fetch
from monitor.feeds.parse import ParsedFeed
from monitor.items import Item, Mention
from monitor.nlp import Extractor, ModelError
from monitor.parser_pool import ParserPool
from monitor.rules.document import Document
from monitor.store import FeedOutcome, FeedState, FeedWrite, Intent, Snapshot, Storage
from monitor.surges import HistoryJob, HistoryLane, HistoryStopped, SurgeWatch

log = logging.getLogger("monitor.pipeline")
T = TypeVar("T")
Stage = Literal["retrieve", "parse", "feed", "internal"]


@dataclass(frozen=True)
class PollReport:
    feed: str
    ok: bool
    new_items: int = 0
    alerts: int = 0
    not_modified: bool = False
    error: str | None = None
    stage: Stage | None = None  # where a poll failed
    matched_rules: tuple[str, ...] = ()  # one entry per match
    advert: websub.Advert | None = None  # the WebSub hub (and topic) the feed advertises
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        return "error" if not self.ok else "not_modified" if self.not_modified else "ok"


@dataclass
class Runtime:
    """What a poll needs: the assembled config, the open store, one HTTP client, the NLP stage.

    ``cpu`` is a single worker thread for entity extraction and matching: they
    run one at a time, off the event loop, so memory stays flat and the loop
    keeps ticking. ``setup`` is replaced whole on reload; a poll keeps the one
    it started with.
    """

    setup: Setup
    store: Storage
    client: httpx.AsyncClient
    extractor: Extractor  # entities; a LazyExtractor loads the model on the first items that need it
    clock: Callable[[], datetime]
    cpu: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="cpu"))
    parser: ParserPool = field(default_factory=ParserPool)
    hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    inflight: set[int] = field(default_factory=set)  # ids of the feeds being polled
    stopping: bool = False  # set on shutdown: polls waiting for a slot do not start
    # Whether a WebSub hub pushes this feed now (the daemon's Subscriber says): then polls are the safety net only.
    pushed: Callable[[int, datetime], bool] = field(default=lambda feed_id, now: False)
    _slots: asyncio.Semaphore | None = None
    _push_order: dict[int, asyncio.Lock] = field(default_factory=dict)
    surges: SurgeWatch = field(default_factory=SurgeWatch)  # the spike rules' matching items, between checks
    # Where the history of a spike rule just added is evaluated, off the loop (None: in the check, for tools).
    surge_history: HistoryLane | None = None
    surge_jobs: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def push(self, feed: FeedState, content: bytes, content_type: str | None, url: str) -> PollReport:
        """Take what a WebSub hub pushed for a feed: parsed, analysed and recorded as a poll's would be, unfetched.

        ``url`` is the subscription's topic (relative links resolve against
        it). The pushes of one feed are taken in the order they came. A push
        may run beside a poll of its feed: each reads its snapshot and writes
        in one transaction, so what one stored the other finds known (and
        alerts once). Never raises.
        """
        async with self._push_order.setdefault(feed.id, asyncio.Lock()):
            if self.stopping:
                return PollReport(feed.name, ok=False, error="not taken: the daemon is stopping", stage="internal")
            return await _guarded_push(self, feed, content, content_type, url)

    async def poll(self, feed: FeedState) -> PollReport:
        """Poll one feed, at most ``poll.concurrency`` at a time. Never raises; never two polls of one feed."""
        if feed.id in self.inflight:
            return PollReport(feed.name, ok=False, error="a poll of this feed is already running", stage="internal")
        self.inflight.add(feed.id)
        try:
            if self._slots is None:
                self._slots = asyncio.Semaphore(self.setup.config.settings.poll.concurrency)
            async with self._slots:
                if self.stopping:
                    return PollReport(
                        feed.name, ok=False, error="not started: the daemon is stopping", stage="internal"
                    )
                return await _guarded_poll(self, feed)
        finally:
            self.inflight.discard(feed.id)

    def close(self) -> None:
        if self.surge_history is not None:
            self.surge_history.close()
        self.cpu.shutdown(wait=True)
        self.parser.close()

    async def settle_surges(self) -> None:
        """Wait for the surge checks waiting on a history evaluation (``poll --once`` ends only after them)."""
        while self.surge_jobs:
            await asyncio.gather(*self.surge_jobs.values(), return_exceptions=True)

    async def parse(self, content: bytes, url: str, content_type: str | None) -> ParsedFeed:
        """A feed document parsed in a parser process, within ``poll.parse_timeout``, texts cut to ``poll.max_text_chars``."""
        poll = self.setup.config.settings.poll
        return await self.parser.parse(
            content, url, content_type, timeout=poll.parse_timeout.total_seconds(), max_text_chars=poll.max_text_chars
        )

    def host_slot(self, url: str) -> asyncio.Semaphore:
        """Bounds the requests in flight to one host, however many of its feeds are due."""
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.hosts:
            self.hosts[host] = asyncio.Semaphore(self.setup.config.settings.poll.per_host)
        return self.hosts[host]

    async def in_cpu_thread(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.cpu, partial(function, *args))

    def limits(self, feed: FeedState) -> schedule.Limits:
        poll = self.setup.config.settings.poll
        return schedule.Limits(
            interval=feed.interval or poll.default_interval,
            minimum=poll.min_interval,
            maximum=poll.max_interval,
            configured=feed.interval is not None,
            error_maximum=poll.max_error_interval,
        )


async def poll_feeds(runtime: Runtime, feeds: Sequence[FeedState]) -> list[PollReport]:
    """Poll feeds concurrently through :meth:`Runtime.poll`."""
    return list(await asyncio.gather(*(runtime.poll(feed) for feed in feeds)))


async def _guarded_poll(runtime: Runtime, feed: FeedState) -> PollReport:
    started = time.monotonic()
    now = runtime.clock()
    try:
        return await _poll(runtime, runtime.setup, feed, now, started)
    except (FeedError, ModelError) as exc:  # a model that will not load: said in its own words, like a feed's error
        return _record_failure(runtime, feed, now, exc, started)
    except Exception as exc:  # a bug or a storage failure: recorded on the feed like any failure, others go on
        log.exception("poll.crashed", extra={"feed": feed.name, "error": repr(exc)})
        return _record_failure(runtime, feed, now, exc, started)


async def _poll(runtime: Runtime, setup: Setup, feed: FeedState, now: datetime, started: float) -> PollReport:
    settings = setup.config.settings
    store = runtime.store
    limits = runtime.limits(feed)
    async with runtime.host_slot(feed.url):
        fetched = await fetch(
            runtime.client,
            feed.url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            max_bytes=settings.poll.max_bytes,
            private=private_access(settings.poll.allow_private, feed.url, from_config=feed.source == "config"),
        )
    hints = schedule.CacheHints.from_headers(fetched.headers, now)
    body_hash = None if fetched.content is None else _digest(fetched.content)
    # The very document parsed last time (a feed without validators): nothing in it can be new.
    unchanged = not fetched.not_modified and feed.first_fetch_done and body_hash == feed.body_hash
    if fetched.not_modified or unchanged:
        next_poll = schedule.after_success(
            now, limits, entries_last_week=store.entries_last_week(feed.id, now), hints=hints
        )
        next_poll = _safety_net(runtime, feed, now, limits, next_poll)
        store.record_feed_outcome(FeedOutcome(feed.id, now, next_poll.at, next_poll.reason))
        if unchanged:  # a poll done, with nothing fresh in it
            extra = {"feed": feed.name, "unchanged": True, "fresh": 0, "seconds": round(time.monotonic() - started, 3)}
            log.info("poll.done", extra=extra)
        else:
            log.info("poll.not_modified", extra={"feed": feed.name})
        return PollReport(
            feed.name, ok=True, not_modified=True, seconds=time.monotonic() - started, advert=_advert(fetched, None)
        )
    assert fetched.content is not None
    parsed = await runtime.parse(fetched.content, fetched.url, fetched.content_type)
    if parsed.warning:
        log.info("poll.parse_warning", extra={"feed": feed.name, "warning": parsed.warning})

    known = store.known_items(feed.id, [item.key for item in parsed.items])
    fresh = fresh_items(parsed.items, known)
    backfill = not feed.first_fetch_done and not feed.alert_first_fetch
    if backfill:
        # Nobody is alerted about a first fetch, so its entities, matches and
        # stories can wait: enrich_backlog() adds them when the CPU is free,
        # and new items of other feeds are not queued behind a thousand old ones.
        analysed = [Analysed(item) for item in fresh]
    else:
        analysed = await runtime.in_cpu_thread(analyse, setup, fresh, runtime.extractor, feed.name, feed.tags)
    next_poll = schedule.after_success(
        now,
        limits,
        entries_last_week=store.entries_last_week(feed.id, now) + new_this_week(fresh, known, now),
        hints=hints,
        ttl_minutes=parsed.ttl_minutes,
    )
    next_poll = _safety_net(runtime, feed, now, limits, next_poll)
    feed_write = FeedWrite(
        feed.id, now, next_poll.at, next_poll.reason, fetched.etag, fetched.last_modified, parsed.title, body_hash
    )
    intent = record_poll(store, setup, feed.id, analysed, now=now, feed=feed_write, backfill=backfill)
    check_surges(runtime, setup, analysed, now)
    counts = summarise(intent)
    _log_done("poll.done", feed, parsed, fresh, counts, started, backfill=backfill)
    return _done(feed, fresh, analysed, counts, started, advert=_advert(fetched, parsed))


def _digest(content: bytes) -> str:
    """What tells one feed document from another (BLAKE2b, 128 bits)."""
    return hashlib.blake2b(content, digest_size=16).hexdigest()


def _advert(fetched: Fetched, parsed: ParsedFeed | None) -> websub.Advert | None:
    """The WebSub hub and topic of a retrieved feed: its Link header first, then the document."""
    return websub.discover(
        fetched.url,
        header_hubs=fetched.links("hub"),
        header_self=next(iter(fetched.links("self")), None),
        feed_hubs=parsed.hubs if parsed else (),
        feed_self=parsed.self_url if parsed else None,
    )


def _safety_net(
    runtime: Runtime, feed: FeedState, now: datetime, limits: schedule.Limits, planned: schedule.NextPoll
) -> schedule.NextPoll:
    """A feed that a hub pushes is polled as a safety net only: every ``poll.max_interval``."""
    if not runtime.pushed(feed.id, now) or planned.at >= now + limits.maximum:
        return planned
    return schedule.NextPoll(
        now + limits.maximum, f"pushed by its WebSub hub; polled every {format_duration(limits.maximum)} as well"
    )


async def _guarded_push(
    runtime: Runtime, feed: FeedState, content: bytes, content_type: str | None, url: str
) -> PollReport:
    started = time.monotonic()
    now = runtime.clock()
    try:
        return await _push(runtime, runtime.setup, feed, content, content_type, url, now, started)
    except Exception as exc:  # the polls go on, and so does the hub: logged, and the next poll is the safety net
        error = str(exc) if isinstance(exc, FeedError) else f"internal error: {exc!r}"
        stage: Stage = "parse" if isinstance(exc, ParseError) else "feed" if isinstance(exc, FeedError) else "internal"
        log.warning("push.failed", extra={"feed": feed.name, "stage": stage, "error": error})
        return PollReport(feed.name, ok=False, error=error, stage=stage, seconds=time.monotonic() - started)


async def _push(
    runtime: Runtime,
    setup: Setup,
    feed: FeedState,
    content: bytes,
    content_type: str | None,
    url: str,
    now: datetime,
    started: float,
) -> PollReport:
    parsed = await runtime.parse(content, url, content_type)
    known = runtime.store.known_items(feed.id, [item.key for item in parsed.items])
    fresh = fresh_items(parsed.items, known)
    analysed = await runtime.in_cpu_thread(analyse, setup, fresh, runtime.extractor, feed.name, feed.tags)
    # The feed's validators and next poll stay as the last poll left them: a push is not a retrieval.
    intent = record_poll(runtime.store, setup, feed.id, analysed, now=now, feed=None)
    check_surges(runtime, setup, analysed, now)
    counts = summarise(intent)
    _log_done("push.done", feed, parsed, fresh, counts, started)
    return _done(feed, fresh, analysed, counts, started)


def _done(
    feed: FeedState,
    fresh: Sequence[Item],
    analysed: Sequence[Analysed],
    counts: Mapping[str, int],
    started: float,
    **more: Any,
) -> PollReport:
    """The report of a poll or a push of ``feed`` that went through."""
    return PollReport(
        feed.name,
        ok=True,
        new_items=len(fresh),
        alerts=counts["alerts"],
        matched_rules=tuple(rule for one in analysed for rule, _ in one.matches),
        seconds=time.monotonic() - started,
        **more,
    )


def _log_done(
    event: str,
    feed: FeedState,
    parsed: ParsedFeed,
    fresh: Sequence[Item],
    counts: Mapping[str, int],
    started: float,
    **more: Any,
) -> None:
    """The one line a poll or a push of a feed ends with."""
    log.info(
        event,
        extra={
            "feed": feed.name,
            "entries": len(parsed.items),
            "fresh": len(fresh),
            "matches": counts["matches"],
            "alerts": counts["alerts"],
            "suppressed": counts["suppressed"],
            **more,
            "seconds": round(time.monotonic() - started, 3),
        },
    )


def record_poll(
    store: Storage,
    setup: Setup,
    feed_id: int,
    analysed: Sequence[Analysed],
    *,
    now: datetime,
    feed: FeedWrite | None,
    backfill: bool = False,
) -> Intent:
    """Read the snapshot, decide, write: one transaction, with no await in between.

    What the decision saw is what is there when it is written. Returns the
    intent written. ``feed`` is None for pushed content, which leaves the feed's
    poll state alone.
    """
    stories = setup.config.settings.stories
    with store.transaction():
        # A first fetch is stored as it is and decided later (enrich_backlog): nothing to read for it.
        snapshot = (
            Snapshot()
            if backfill
            else store.snapshot(
                feed_id=feed_id,
                item_keys=[one.item.key for one in analysed],
                story_keys={key for one in analysed if one.story for key in one.story.keys},
                since=now - stories.window,
                pairs={
                    (rule, channel) for one in analysed for rule, _ in one.matches for channel in _notify(setup, rule)
                },
                now=now,
            )
        )
        intent = decide_poll(
            feed_id,
            analysed,
            snapshot,
            setup.rulebook.plans,
            now=now,
            feed=feed,
            backfill=backfill,
            story_window=stories.window,
            threshold=stories.threshold,
        )
        store.write(intent)
    return intent


def check_surges(runtime: Runtime, setup: Setup, analysed: Sequence[Analysed], now: datetime) -> None:
    """After new items a spike rule matched were stored: check those rules for a surge.

    A surge needs new matching items (a count only grows when one arrives), so
    this is the only time one can fire. A failure is logged; the poll stands.
    """
    spiked = {rule for one in analysed for rule, _ in one.matches if rule in setup.rulebook.surges}
    if spiked:
        _check_surges(runtime, setup, spiked, now)


def _check_surges(runtime: Runtime, setup: Setup, rules: set[str], now: datetime) -> None:
    """Check ``rules`` now; a rule whose history must first be evaluated is checked when that is done, off the loop."""
    waiting: list[HistoryJob] = []
    lane = runtime.surge_history
    try:
        runtime.surges.check(runtime.store, setup, now, rules, history=None if lane is None else waiting.append)
    except Exception:
        log.exception("surge.check_failed", extra={"rules": sorted(rules)})
    for job in waiting:
        if lane is not None and job.name not in runtime.surge_jobs and not runtime.stopping:
            runtime.surge_jobs[job.name] = asyncio.create_task(
                _surge_history(runtime, lane, job), name=f"surge-history:{job.name}"
            )


async def _surge_history(runtime: Runtime, lane: HistoryLane, job: HistoryJob) -> None:
    """Evaluate a spike rule's stored history in the HistoryLane, then check the rule (on the loop: milliseconds).

    Polls, pushes, alerts and the other rules' surge checks go on meanwhile; new
    matches of this rule are stored on arrival and counted at that check.
    """
    started = time.monotonic()
    log.info("surge.history_started", extra={"rule": job.name, "since": job.horizon.isoformat(timespec="seconds")})
    try:
        memory = await lane.evaluate(job)
    except HistoryStopped:
        return
    except Exception:
        log.exception("surge.history_failed", extra={"rule": job.name})
        return
    finally:
        runtime.surge_jobs.pop(job.name, None)
    runtime.surges.remember(job.name, memory)
    extra = {"rule": job.name, "items": memory.read, "matching": len(memory.points)}
    log.info("surge.history_done", extra={**extra, "seconds": round(time.monotonic() - started, 3)})
    setup = runtime.setup  # a reload since: the rule checked as it is now (a changed query is evaluated anew)
    if not runtime.stopping and job.name in setup.rulebook.surges:
        _check_surges(runtime, setup, {job.name}, runtime.clock())


def _notify(setup: Setup, rule: str) -> tuple[str, ...]:
    plan = setup.rulebook.plans.get(rule)
    return plan.channels if plan else ()


def analyse(
    setup: Setup,
    items: Sequence[Item],
    extractor: Extractor,
    feed_name: str,
    feed_tags: Sequence[str],
    mentions: Sequence[Sequence[Mention]] | None = None,
) -> list[Analysed]:
    """Entities, matching rules and story fingerprints of items (CPU-bound: run in the CPU thread)."""
    if not items:
        return []
    if mentions is None:
        mentions = extractor.extract([(item.title, item.text) for item in items])
    analysed = []
    for item, found in zip(items, mentions, strict=True):
        document = Document.from_item(item, feed_name, found, feed_tags)
        matches = tuple(
            (rule.name, tuple(hit.to_dict() for hit in hits)) for rule, hits in setup.rulebook.match(document)
        )
        analysed.append(Analysed(item, tuple(found), matches, make_story_info(item)))
    return analysed


async def enrich_backlog(runtime: Runtime, batch: int = 64) -> int:
    """Add entities, matches and stories to one batch of items stored without them; how many.

    Matches found this way are history (for `rules test`, `explain`); they
    alert nobody, as the items were old news when they arrived.
    """
    store = runtime.store
    stored = store.unenriched_items(batch)
    if not stored:
        return 0
    setup = runtime.setup
    settings = setup.config.settings

    def analyse_all() -> list[Enrichable]:
        mentions = runtime.extractor.extract([(s.item.title, s.item.text) for s in stored])
        return [
            Enrichable(
                one.id,
                one.feed_id,
                one.first_seen_at,
                analyse(setup, [one.item], runtime.extractor, one.feed, one.feed_tags, [found])[0],
            )
            for one, found in zip(stored, mentions, strict=True)
        ]

    batch_items = await runtime.in_cpu_thread(analyse_all)
    now = runtime.clock()
    with store.transaction():
        snapshot = store.snapshot(
            feed_id=None,
            item_keys=(),
            story_keys={key for one in batch_items if one.analysed.story for key in one.analysed.story.keys},
            since=min(one.seen_at for one in batch_items) - settings.stories.window,
            pairs=(),
            now=now,
        )
        intent = decide_enrichment(
            batch_items, snapshot, now=now, story_window=settings.stories.window, threshold=settings.stories.threshold
        )
        store.write(intent)
    log.info("enrich.done", extra={"items": len(stored), "matches": summarise(intent)["matches"]})
    return len(stored)


def _record_failure(runtime: Runtime, feed: FeedState, now: datetime, exc: Exception, started: float) -> PollReport:
    retry_after = getattr(exc, "retry_after", None)
    next_poll = schedule.after_error(now, runtime.limits(feed), feed.error_count + 1, retry_after=retry_after)
    stage: Stage = (
        "parse" if isinstance(exc, ParseError)
        else "retrieve" if isinstance(exc, RetrieveError)
        else "feed" if isinstance(exc, FeedError)
        else "internal"
    )  # fmt: skip
    # One line of bounded size, whatever the exception carries (a message can quote the feed).
    reason = clean_line(str(exc) if isinstance(exc, FeedError | ModelError) else f"internal error: {exc!r}", 1_000)
    try:
        runtime.store.record_feed_outcome(FeedOutcome(feed.id, now, next_poll.at, next_poll.reason, error=reason))
    except Exception as store_exc:  # the store itself failing: logged; the feed is tried again at the next tick
        log.error("poll.not_recorded", extra={"feed": feed.name, "error": repr(store_exc)})
    log.warning(
        "poll.failed",
        extra={
            "feed": feed.name,
            "url": feed.url,
            "stage": stage,
            "error": reason,
            "next_poll": next_poll.at.isoformat(timespec="seconds"),
        },
    )
    return PollReport(feed.name, ok=False, error=reason, stage=stage, seconds=time.monotonic() - started)
