"""One poll of one feed, end to end. This module orders the calls; it decides nothing.

    store: feed state | fetch | parse | store: which items are new or changed
      | entities | match | story fingerprints
      | store: ONE transaction (items, stories, entities, matches, paced alerts)

The deciding is done elsewhere and is pure: ``feeds.schedule`` says when to
poll next, ``rules`` says which rules match and why, ``stories`` which
earlier item tells the same story, ``alerts.policy`` whether an alert goes
out now, waits for a digest or is suppressed, :func:`plan_records` what to
store and whom to alert. Items of a feed's first fetch alert
nobody; they are stored at once and get their entities and matches later
(:func:`enrich_backlog`), so that they never delay the analysis of new items.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from monitor import stories
from monitor.alerts import policy
from monitor.config import Config, RuleConfig
from monitor.entities import EntityExtractor
from monitor.errors import FeedError, ParseError, RetrieveError
from monitor.feeds import schedule
from monitor.feeds.fetch import fetch
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.items import Item, Mention
from monitor.rules.match import (
    CompiledRule,
    Document,
    Hit,
    Lexicon,
    RuleIndex,
    compile_rule,
)
from monitor.store import (
    AlertPlan,
    AlertPlanner,
    AlertStats,
    Enrichment,
    FeedState,
    ItemRecord,
    MatchRecord,
    PollResult,
    Store,
    StoryCandidate,
    StoryChooser,
    StoryInfo,
)

log = logging.getLogger("monitor.pipeline")
T = TypeVar("T")


@dataclass(frozen=True)
class Rulebook:
    """The rules of one config, compiled and indexed. Replaced whole on reload."""

    rules: dict[str, RuleConfig]
    lexicon: Lexicon
    index: RuleIndex

    @classmethod
    def from_config(cls, config: Config) -> Rulebook:
        lexicon = Lexicon.from_entities(config.entities)
        compiled = [compile_rule(rule.name, rule.query, lexicon) for rule in config.rules]
        return cls({rule.name: rule for rule in config.rules}, lexicon, RuleIndex(compiled, lexicon))

    def match(self, document: Document) -> list[tuple[CompiledRule, list[Hit]]]:
        return self.index.match(document)


def _parser_process() -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_exit_with, initargs=(os.getpid(),)
    )
    pool.submit(_ready)  # start it now, not when the first feed is waiting to be parsed
    return pool


def _ready() -> None:
    """A no-op run in the parser process, to start it early."""


def _exit_with(parent: int) -> None:
    """Runs in the parser process: end it when the daemon is gone, even after a kill -9.

    A worker left behind would wait for work forever; systemd would kill it
    with the unit, but a daemon run by hand has no one else to clean up.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-daemon", daemon=True).start()


@dataclass
class Runtime:
    """What a poll needs: config, the open store, one HTTP client, the NLP stage.

    ``cpu`` is a single worker thread for parsing and entity extraction: they
    run one at a time, off the event loop, so memory stays flat and the loop
    keeps ticking.
    """

    config: Config
    store: Store
    client: httpx.AsyncClient
    extractor: EntityExtractor
    rulebook: Rulebook
    clock: Callable[[], datetime]
    cpu: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="cpu"))
    # Parsing runs in a process of its own: feedparser is pure Python, and in a
    # thread it would hold the interpreter lock the event loop and the entity
    # stage need. A spawned process imports only the parser, not spaCy.
    parser: ProcessPoolExecutor = field(default_factory=lambda: _parser_process())
    hosts: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    async def parse(self, content: bytes, url: str, content_type: str | None) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.parser, partial(parse_feed, content, url=url, content_type=content_type))
        except BrokenProcessPool:
            # The parser process died (killed, out of memory): start a new one, report this feed.
            self.parser = _parser_process()
            raise ParseError(f"{url}: the parser process died while parsing this feed") from None

    def close(self) -> None:
        self.cpu.shutdown(wait=True)
        self.parser.shutdown(wait=True, cancel_futures=True)

    def host_slot(self, url: str) -> asyncio.Semaphore:
        """Bounds the requests in flight to one host, however many of its feeds are due."""
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.hosts:
            self.hosts[host] = asyncio.Semaphore(self.config.settings.poll.per_host)
        return self.hosts[host]

    async def in_cpu_thread(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.cpu, lambda: function(*args, **kwargs))

    def limits(self, feed: FeedState) -> schedule.Limits:
        poll = self.config.settings.poll
        return schedule.Limits(
            interval=feed.interval or poll.default_interval,
            minimum=poll.min_interval,
            maximum=poll.max_interval,
            configured=feed.interval is not None,
        )


@dataclass(frozen=True)
class PollReport:
    feed: str
    ok: bool
    new_items: int = 0
    alerts: int = 0
    not_modified: bool = False
    error: str | None = None
    stage: str | None = None  # where a poll failed: retrieve | parse | feed | internal
    matched_rules: tuple[str, ...] = ()  # one entry per match
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        return "error" if not self.ok else "not_modified" if self.not_modified else "ok"


def fresh_items(items: Sequence[Item], known: dict[str, str]) -> list[Item]:
    """Items that are new, or whose content changed since we stored them.

    A feed that lists the same entry twice keeps the first copy.
    """
    seen: set[str] = set()
    fresh = []
    for item in items:
        if item.key in seen:
            continue
        seen.add(item.key)
        if known.get(item.key) != item.content_hash:
            fresh.append(item)
    return fresh


def new_this_week(fresh: Sequence[Item], known: dict[str, str], now: datetime) -> int:
    """How many of this poll's new (not merely changed) items were published in the last week."""
    week_ago = now - timedelta(days=7)
    return sum(1 for item in fresh if item.key not in known and (item.published_at or now) > week_ago)


def story_info(item: Item) -> StoryInfo:
    """What the store needs to find the story an item belongs to."""
    link_key = stories.canonical_link(item.link)
    fp = stories.fingerprint(item.title, item.text)
    return StoryInfo(link_key, fp.to_db(), tuple(stories.lookup_keys(link_key, fp)))


def story_chooser(threshold: float) -> StoryChooser:
    """Lets the store ask stories.same_story which earlier story a new item joins."""

    def choose(info: StoryInfo, found: list[StoryCandidate]) -> int | None:
        candidates = []
        for candidate in found:
            try:
                fp = stories.Fingerprint.from_db(candidate.fingerprint) if candidate.fingerprint else None
            except ValueError:  # a fingerprint of an older format: that item can match by link only
                fp = None
            candidates.append(
                stories.Candidate(
                    candidate.story_id, candidate.item_id, candidate.link_key, fp or _NO_TEXT, candidate.seen_at
                )
            )
        match = stories.same_story(info.link_key, stories.Fingerprint.from_db(info.fingerprint), candidates, threshold=threshold)
        return match.story_id if match else None

    return choose


_NO_TEXT = stories.fingerprint("", "")


def alert_planner(config: Config, now: datetime) -> AlertPlanner:
    """Lets the store ask the rule's policy how each new alert starts."""
    statuses = {"send": "pending", "hold": "held", "suppress": "suppressed"}

    def plan(rule: str, channel: str, stats: AlertStats) -> AlertPlan:
        history = policy.RecentHistory(stats.instant_last_hour, stats.oldest_instant_last_hour, stats.last_alert_for_story)
        decision = policy.decide(config.policy(rule), now, history)
        return AlertPlan(statuses[decision.action], decision.reason, decision.release_at)

    return plan


def plan_records(
    items: Sequence[Item],
    mentions: Sequence[Sequence[Mention]],
    matches: Sequence[Sequence[tuple[CompiledRule, list[Hit]]]],
    rules: dict[str, RuleConfig],
) -> list[ItemRecord]:
    """What to store for each new item, and whom each match alerts."""
    records = []
    for item, item_mentions, item_matches in zip(items, mentions, matches, strict=True):
        match_records = [
            MatchRecord(rule=rule.name, hits=[hit.to_dict() for hit in hits], channels=tuple(rules[rule.name].notify))
            for rule, hits in item_matches
        ]
        records.append(ItemRecord(item, item_mentions, match_records))
    return records


async def poll_feed(runtime: Runtime, feed: FeedState) -> PollReport:
    """Poll one feed and store what it brought. Never raises for a feed's fault."""
    started = time.monotonic()
    now = runtime.clock()
    settings = runtime.config.settings
    limits = runtime.limits(feed)
    try:
        async with runtime.host_slot(feed.url):
            fetched = await fetch(
                runtime.client,
                feed.url,
                etag=feed.etag,
                last_modified=feed.last_modified,
                max_bytes=settings.poll.max_bytes,
            )
        hints = schedule.CacheHints.from_headers(fetched.headers, now)
        if fetched.not_modified:
            next_poll = schedule.after_success(
                now, limits, entries_last_week=runtime.store.entries_last_week(feed.id, now), hints=hints
            )
            runtime.store.record_not_modified(feed.id, now, next_poll.at, next_poll.reason)
            log.info("poll.not_modified", extra={"feed": feed.name})
            return PollReport(feed.name, ok=True, not_modified=True, seconds=time.monotonic() - started)
        assert fetched.content is not None
        parsed = await runtime.parse(fetched.content, fetched.url, fetched.content_type)
    except FeedError as exc:
        return _record_failure(runtime, feed, now, limits, exc, started)

    if parsed.warning:
        log.info("poll.parse_warning", extra={"feed": feed.name, "warning": parsed.warning})
    known = runtime.store.known_items(feed.id, [item.key for item in parsed.items])
    fresh = fresh_items(parsed.items, known)
    backfill = not feed.first_fetch_done and not feed.alert_first_fetch
    if backfill:
        # Nobody is alerted about a first fetch, so its entities and matches
        # can wait: enrich_backlog() adds them when the CPU is free, and new
        # items of other feeds are not queued behind a thousand old ones.
        records = [ItemRecord(item, (), (), enriched=False) for item in fresh]
    else:
        records = await _analyse(runtime, feed.name, feed.tags, fresh)
    if not backfill:
        # Stories of a first fetch are found when it is enriched, like its entities.
        infos = await runtime.in_cpu_thread(lambda: [story_info(record.item) for record in records])
        records = [replace(record, story=info) for record, info in zip(records, infos, strict=True)]
    next_poll = schedule.after_success(
        now,
        limits,
        entries_last_week=runtime.store.entries_last_week(feed.id, now) + new_this_week(fresh, known, now),
        hints=hints,
        ttl_minutes=parsed.ttl_minutes,
    )
    counts = runtime.store.record_poll(
        PollResult(
            feed_id=feed.id,
            polled_at=now,
            next_poll_at=next_poll.at,
            next_poll_reason=next_poll.reason,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            title=parsed.title,
            records=records,
            story_window=runtime.config.settings.stories.window,
        ),
        choose_story=story_chooser(runtime.config.settings.stories.threshold),
        plan_alert=alert_planner(runtime.config, now),
    )
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
        matched_rules=tuple(match.rule for record in records for match in record.matches),
        seconds=time.monotonic() - started,
    )


async def _analyse(
    runtime: Runtime, feed_name: str, feed_tags: Sequence[str], items: Sequence[Item]
) -> list[ItemRecord]:
    """Entities and matches of new items, and the alerts they call for."""
    if not items:
        return []
    mentions = await runtime.in_cpu_thread(runtime.extractor.extract, [(i.title, i.text) for i in items])
    matches = _match(runtime, feed_name, feed_tags, items, mentions)
    return plan_records(items, mentions, matches, runtime.rulebook.rules)


def _match(
    runtime: Runtime,
    feed_name: str,
    feed_tags: Sequence[str],
    items: Sequence[Item],
    mentions: Sequence[Sequence[Mention]],
) -> list[list[tuple[CompiledRule, list[Hit]]]]:
    return [
        runtime.rulebook.match(Document.from_item(item, feed_name, item_mentions, feed_tags))
        for item, item_mentions in zip(items, mentions, strict=True)
    ]


async def enrich_backlog(runtime: Runtime, batch: int = 64) -> int:
    """Add entities and matches to one batch of items stored without them; how many.

    Matches found this way are history (for `rules test`, `explain`); they
    alert nobody, as the items were old news when they arrived.
    """
    stored = runtime.store.unenriched_items(batch)
    if not stored:
        return 0
    items = [s.item for s in stored]

    def analyse() -> tuple[list[list[Mention]], list[StoryInfo]]:
        return runtime.extractor.extract([(i.title, i.text) for i in items]), [story_info(i) for i in items]

    mentions, infos = await runtime.in_cpu_thread(analyse)
    enrichments = []
    tags = runtime.store.feed_tags()
    for one, item_mentions, info in zip(stored, mentions, infos, strict=True):
        matches = _match(runtime, one.feed, tags.get(one.feed, ()), [one.item], [item_mentions])[0]
        found = [MatchRecord(rule.name, [h.to_dict() for h in hits], ()) for rule, hits in matches]
        enrichments.append(Enrichment(one.id, item_mentions, found, info))
    stories_settings = runtime.config.settings.stories
    matched = runtime.store.record_enrichment(
        enrichments,
        runtime.clock(),
        choose_story=story_chooser(stories_settings.threshold),
        story_window=stories_settings.window,
    )
    log.info("enrich.done", extra={"items": len(stored), "matches": matched})
    return len(stored)


def _record_failure(
    runtime: Runtime, feed: FeedState, now: datetime, limits: schedule.Limits, exc: FeedError, started: float
) -> PollReport:
    retry_after = getattr(exc, "retry_after", None)
    next_poll = schedule.after_error(now, limits, feed.error_count + 1, retry_after=retry_after)
    reason = str(exc)
    runtime.store.record_failure(feed.id, reason, now, next_poll.at, next_poll.reason)
    kind = "parse" if isinstance(exc, ParseError) else "retrieve" if isinstance(exc, RetrieveError) else "feed"
    log.warning(
        "poll.failed",
        extra={"feed": feed.name, "url": feed.url, "stage": kind, "error": reason, "next_poll": next_poll.at.isoformat(timespec="seconds")},
    )
    return PollReport(feed.name, ok=False, error=reason, stage=kind, seconds=time.monotonic() - started)


async def poll_feeds(runtime: Runtime, feeds: Sequence[FeedState]) -> list[PollReport]:
    """Poll feeds concurrently, at most ``poll.concurrency`` at a time."""
    semaphore = asyncio.Semaphore(runtime.config.settings.poll.concurrency)

    async def bounded(feed: FeedState) -> PollReport:
        async with semaphore:
            try:
                return await poll_feed(runtime, feed)
            except Exception as exc:  # a bug or a storage failure: keep the other feeds going
                log.exception("poll.crashed", extra={"feed": feed.name, "error": repr(exc)})
                return PollReport(feed.name, ok=False, error=f"internal error: {exc!r}", stage="internal")

    return list(await asyncio.gather(*(bounded(feed) for feed in feeds)))
