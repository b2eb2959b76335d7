"""One poll, in-process, through the real pieces: a local feed server, the real parser
process, the real spaCy model and a real SQLite file. Results are read from the store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
from conftest import BACKFILL, DEFAULT_ENTITIES, XI_PUTIN_CALL, Story, rss, write_config

from monitor.assembly import load_setup
from monitor.entities import EntityExtractor, load_pipeline
from monitor.errors import ParseError
from monitor.feeds.fetch import new_client
from monitor.parser_pool import ParserPool
from monitor.pipeline import Runtime, enrich_backlog, poll_feeds
from monitor.store import AlertStatus, open_storage

START = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
COPY = Story(
    "copy-1",
    "Putin and Xi speak by phone about Ukraine",
    XI_PUTIN_CALL.description + " The two leaders also discussed trade.",
    datetime(2026, 11, 27, 9, 40, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def nlp():
    return load_pipeline("en_core_web_sm")


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def runtime_for(directory, nlp, clock: Clock) -> Runtime:
    setup = load_setup(directory)
    store = open_storage(setup.config.settings.database)
    store.sync_feeds(setup.config.feed_specs(), clock())
    return Runtime(
        setup=setup,
        store=store,
        client=new_client(timeout=5),
        extractor=EntityExtractor(nlp, setup.config.entities),
        clock=clock,
    )


async def close(runtime: Runtime) -> None:
    await runtime.client.aclose()
    runtime.close()
    runtime.store.close()


def test_a_dead_parser_process_fails_one_feed_and_is_replaced():
    body = rss(*BACKFILL)

    async def scenario() -> None:
        parser = ParserPool()
        try:
            assert len((await parser.parse(body, "http://127.0.0.1/a.xml", None)).items) == 2
            first = await parser.pid()
            os.kill(first, signal.SIGKILL)
            with pytest.raises(ParseError, match="the parser process died"):
                await parser.parse(body, "http://127.0.0.1/a.xml", None)
            assert len((await parser.parse(body, "http://127.0.0.1/a.xml", None)).items) == 2
            assert await parser.pid() != first
        finally:
            parser.close()

    asyncio.run(scenario())


def test_a_first_fetch_is_stored_then_enriched_and_new_items_alert(tmp_path, feed_server, nlp):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    feed_server.route("/agency.xml", rss(*BACKFILL[:1]))
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}, {"name": "agency", "url": feed_server.url("/agency.xml")}],
        channels={"desk": {"url": "json://127.0.0.1:9/unused"}},
        rules=[{"name": "xi-putin", "query": "person:Putin AND person:Xi", "notify": ["desk", "console"]}],
        entities=DEFAULT_ENTITIES,
    )
    clock = Clock(START)

    async def scenario() -> None:
        runtime = runtime_for(directory, nlp, clock)
        store = runtime.store
        try:
            reports = await poll_feeds(runtime, store.feeds())
            assert [(r.feed, r.ok, r.new_items, r.alerts) for r in reports] == [("agency", True, 1, 0), ("wire", True, 2, 0)]
            assert store.unenriched_count() == 3 and store.count("alerts") == 0
            assert all(stored.backfill and not stored.mentions for stored in store.iter_items())

            assert await enrich_backlog(runtime) == 3
            assert await enrich_backlog(runtime) == 0
            greetings = next(s for s in store.iter_items() if s.item.guid == "wire-2")
            assert {m.canonical for m in greetings.mentions} >= {"Vladimir Putin", "Xi Jinping"}
            # The same wire story on two feeds became one story when enriched.
            rates = [s for s in store.iter_items() if s.item.guid == "wire-1"]
            assert len(rates) == 2 and rates[0].story_id == rates[1].story_id == rates[0].id
            assert store.count("matches") == 1 and store.count("alerts") == 0  # history, not news

            clock.now += timedelta(minutes=5)
            feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL))
            feed_server.route("/agency.xml", rss(COPY, *BACKFILL[:1]))
            [wire] = [f for f in store.feeds() if f.name == "wire"]
            [report] = await poll_feeds(runtime, [wire])
            assert (report.new_items, report.alerts, report.matched_rules) == (1, 2, ("xi-putin",))
            [agency] = [f for f in store.feeds() if f.name == "agency"]
            [report] = await poll_feeds(runtime, [agency])
            assert (report.new_items, report.alerts) == (1, 0)  # a copy of a story already alerted

            alerts = store.list_alerts()
            assert sorted((a.channel, a.status) for a in alerts) == [
                ("console", AlertStatus.PENDING),
                ("console", AlertStatus.SUPPRESSED),
                ("desk", AlertStatus.PENDING),
                ("desk", AlertStatus.SUPPRESSED),
            ]
            call = next(s for s in store.iter_items() if s.item.guid == "wire-3")
            copy = next(s for s in store.iter_items() if s.item.guid == "copy-1")
            assert copy.story_id == call.id
            assert {a.story_id for a in alerts} == {call.id}
        finally:
            await close(runtime)

    asyncio.run(scenario())


def test_a_failure_of_any_kind_is_recorded_on_the_feed_and_backs_off(tmp_path, feed_server, nlp):
    # JSON nested far deeper than any parser recurses: not a FeedError, and still the feed's fault.
    feed_server.route("/deep.json", b"[" * 200_000 + b"]" * 200_000, content_type="application/feed+json")
    feed_server.route("/good.xml", rss(*BACKFILL))
    directory = write_config(
        tmp_path / "config",
        feeds=[{"name": "deep", "url": feed_server.url("/deep.json")}, {"name": "good", "url": feed_server.url("/good.xml")}],
        poll={"min_interval": "1m", "default_interval": "5m", "max_interval": "1h"},
    )
    clock = Clock(START)

    async def scenario() -> None:
        runtime = runtime_for(directory, nlp, clock)
        try:
            reports = {r.feed: r for r in await poll_feeds(runtime, runtime.store.feeds())}
            assert reports["good"].ok and reports["good"].new_items == 2
            assert not reports["deep"].ok and reports["deep"].error
            [status] = [s for s in runtime.store.feed_status() if s.name == "deep"]
            assert status.error_count == 1 and status.last_error == reports["deep"].error
            assert status.next_poll_at is not None and status.next_poll_at > START
            assert [f.name for f in runtime.store.feeds_due(START + timedelta(seconds=30))] == []
        finally:
            await close(runtime)

    asyncio.run(scenario())


def test_one_feed_is_never_polled_twice_at_once(tmp_path, feed_server, nlp):
    import threading

    gate = threading.Event()
    feed_server.route("/slow.xml", rss(*BACKFILL), gate=gate)
    directory = write_config(tmp_path / "config", feeds=[{"name": "slow", "url": feed_server.url("/slow.xml")}])
    clock = Clock(START)

    async def scenario() -> None:
        runtime = runtime_for(directory, nlp, clock)
        try:
            [feed] = runtime.store.feeds()
            first = asyncio.create_task(runtime.poll(feed))
            while not feed_server.requests_for("/slow.xml"):
                await asyncio.sleep(0.01)
            second = await runtime.poll(feed)
            assert not second.ok and "already running" in (second.error or "")
            gate.set()
            assert (await first).ok
            assert len(feed_server.requests_for("/slow.xml")) == 1
        finally:
            gate.set()
            await close(runtime)

    asyncio.run(scenario())


def test_poll_reports_serialise_for_logs():
    # PollReport is plain data: what the daemon logs and counts.
    from monitor.pipeline import PollReport

    report = PollReport("wire", ok=False, error="HTTP 500", stage="retrieve")
    assert report.outcome == "error"
    assert json.loads(json.dumps(report.__dict__))["stage"] == "retrieve"
