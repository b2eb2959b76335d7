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
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx

from monitor.assembly import Setup
from monitor.decide import Analysed, Enrichable, decide_enrichment, decide_poll, fresh_items, new_this_week, summarise
from monitor.decide import story_info as make_story_info
from monitor.entities import EntityExtractor
from monitor.errors import FeedError, ParseError, RetrieveError
from monitor.feeds import schedule
from monitor.feeds.fetch import fetch
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.items import Item, Mention
from monitor.rules.document import Document
from monitor.store import FeedOutcome, FeedState, FeedWrite, Intent, Snapshot, Storage

log = logging.getLogger("monitor.pipeline")
T = TypeVar("T")
Stage = Literal["retrieve", "parse", "feed", "internal"]


class ParserProcess:
    """Feed parsing in a process of its own, replaced when it dies.

    feedparser is pure Python: in a thread it would hold the interpreter lock
    that the event loop and the entity stage need. A spawned process imports
    only the parser, not spaCy, and ends with the daemon even after a kill -9.
    """

    def __init__(self) -> None:
        self._pool = self._start()

    @staticmethod
    def _start() -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with, initargs=(os.getpid(),)
        )
        pool.submit(os.getpid)  # start it now, not when the first feed is waiting to be parsed
        return pool

    async def parse(self, content: bytes, url: str, content_type: str | None) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, partial(parse_feed, content, url=url, content_type=content_type))
        except BrokenProcessPool:
            # The parser process died (killed, out of memory): start a new one, report this feed.
            self._pool = self._start()
            raise ParseError(f"{url}: the parser process died while parsing this feed") from None

    async def pid(self) -> int:
        """The process id of the parser process (starting it again if it died)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, os.getpid)
        except BrokenProcessPool:
            self._pool = self._start()
            return await loop.run_in_executor(self._pool, os.getpid)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _exit_with(parent: int) -> None:
    """Runs in the parser process: end it when the daemon is gone, even after a kill -9.

    A worker left behind would wait for work forever; systemd would kill it
    with the unit, but a daemon run by hand has no one else to clean up. Ctrl-C
    reaches the whole process group: the daemon stops the parser itself, so the
    parser ignores SIGINT rather than print a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-daemon", daemon=True).start()


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
    extractor: EntityExtractor
    clock: Callable[[], datetime]
    cpu: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="cpu"))
    parser: ParserProcess = field(default_factory=ParserProcess)
    hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    inflight: set[int] = field(default_factory=set)  # ids of the feeds being polled
    stopping: bool = False  # set on shutdown: polls waiting for a slot do not start
    _slots: asyncio.Semaphore | None = None

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
                    return PollReport(feed.name, ok=False, error="not started: the daemon is stopping", stage="internal")
                return await _guarded_poll(self, feed)
        finally:
            self.inflight.discard(feed.id)

    def close(self) -> None:
        self.cpu.shutdown(wait=True)
        self.parser.close()

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
        )


async def poll_feeds(runtime: Runtime, feeds: Sequence[FeedState]) -> list[PollReport]:
    """Poll feeds concurrently through :meth:`Runtime.poll`."""
    return list(await asyncio.gather(*(runtime.poll(feed) for feed in feeds)))


async def _guarded_poll(runtime: Runtime, feed: FeedState) -> PollReport:
    started = time.monotonic()
    now = runtime.clock()
    try:
        return await _poll(runtime, runtime.setup, feed, now, started)
    except FeedError as exc:
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
            runtime.client, feed.url, etag=feed.etag, last_modified=feed.last_modified, max_bytes=settings.poll.max_bytes
        )
    hints = schedule.CacheHints.from_headers(fetched.headers, now)
    if fetched.not_modified:
        next_poll = schedule.after_success(
            now, limits, entries_last_week=store.entries_last_week(feed.id, now), hints=hints
        )
        store.record_feed_outcome(FeedOutcome(feed.id, now, next_poll.at, next_poll.reason))
        log.info("poll.not_modified", extra={"feed": feed.name})
        return PollReport(feed.name, ok=True, not_modified=True, seconds=time.monotonic() - started)
    assert fetched.content is not None
    parsed = await runtime.parser.parse(fetched.content, fetched.url, fetched.content_type)
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
    feed_write = FeedWrite(
        feed.id, now, next_poll.at, next_poll.reason, fetched.etag, fetched.last_modified, parsed.title
    )
    intent = record_poll(store, setup, feed.id, analysed, now=now, feed=feed_write, backfill=backfill)
    counts = summarise(intent)
    log.info(
        "poll.done",
        extra={
            "feed": feed.name,
            "entries": len(parsed.items),
            "fresh": len(fresh),
            "matches": counts["matches"],
            "alerts": counts["alerts"],
            "suppressed": counts["suppressed"],
            "backfill": backfill,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return PollReport(
        feed.name,
        ok=True,
        new_items=len(fresh),
        alerts=counts["alerts"],
        matched_rules=tuple(rule for one in analysed for rule, _ in one.matches),
        seconds=time.monotonic() - started,
    )


def record_poll(
    store: Storage,
    setup: Setup,
    feed_id: int,
    analysed: Sequence[Analysed],
    *,
    now: datetime,
    feed: FeedWrite,
    backfill: bool = False,
) -> Intent:
    """Read the snapshot, decide, write: one transaction, with no await in between.

    What the decision saw is what is there when it is written. Returns the intent written.
    """
    stories = setup.config.settings.stories
    with store.transaction():
        # A first fetch is stored as it is and decided later (enrich_backlog): nothing to read for it.
        snapshot = Snapshot() if backfill else store.snapshot(
            feed_id=feed_id,
            item_keys=[one.item.key for one in analysed],
            story_keys={key for one in analysed if one.story for key in one.story.keys},
            since=now - stories.window,
            pairs={(rule, channel) for one in analysed for rule, _ in one.matches for channel in _notify(setup, rule)},
            now=now,
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


def _notify(setup: Setup, rule: str) -> tuple[str, ...]:
    plan = setup.rulebook.plans.get(rule)
    return plan.channels if plan else ()


def analyse(
    setup: Setup,
    items: Sequence[Item],
    extractor: EntityExtractor,
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
    reason = str(exc) if isinstance(exc, FeedError) else f"internal error: {exc!r}"
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

