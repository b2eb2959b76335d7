"""The health endpoint, scraped for real over 127.0.0.1."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import __version__
from monitor.errors import ConfigError, MonitorError
from monitor.health import HealthCheck, HealthServer, HealthServerError, HealthStatus, Metrics
from monitor.items import FeedSpec, Item
from monitor.store import AlertStatus, AlertWrite, FeedWrite, Intent, ItemWrite, SqliteStorage, open_storage

T = TypeVar("T")
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def writable() -> None:
    pass


def serve(
    metrics: Metrics,
    health: Callable[[], HealthStatus],
    test: Callable[[HealthServer, httpx.AsyncClient], Awaitable[T]],
    **options: Any,
) -> T:
    """Run ``test`` against a live server on an ephemeral port of 127.0.0.1."""

    async def run() -> T:
        server = HealthServer(metrics, health, port=0, **options)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", trust_env=False) as client:
                return await test(server, client)
        finally:
            await server.stop()

    return asyncio.run(run())


def scrape(metrics: Metrics, **options: Any) -> httpx.Response:
    async def get(_: HealthServer, client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/metrics")

    return serve(metrics, HealthCheck(metrics, writable).status, get, **options)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[(name, tuple(sorted(labels.items())))]


def sqlite_write_probe(path: Path) -> Callable[[], None]:
    """Ask SQLite for the write lock and give it back at once; no waiting for a busy database."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)

    def probe() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")

    return probe


async def raw(port: int, data: bytes, *, close_write: bool = True) -> bytes:
    """Send bytes as they are; return all the server answers before it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    if close_write:
        writer.write_eof()
    try:
        return await asyncio.wait_for(reader.read(), timeout=5)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


# --- /metrics --------------------------------------------------------------------


def test_metrics_report_what_was_observed() -> None:
    metrics = Metrics()
    metrics.observe_poll("wire", "ok", items=3)
    metrics.observe_poll("wire", "ok", items=2)
    metrics.observe_poll("wire", "not_modified")
    metrics.observe_poll("wire", "error", stage="retrieve")
    metrics.observe_poll("bbc-world", "error", stage="parse")
    metrics.observe_poll("bbc-world", "error")
    metrics.observe_match("xi-putin")
    metrics.observe_match("xi-putin", 2)
    metrics.observe_delivery("newsroom", "sent", timedelta(seconds=1.5))
    metrics.observe_delivery("newsroom", "sent", timedelta(minutes=3))
    metrics.observe_delivery("newsroom", "retry")
    metrics.observe_delivery("me", "dead")
    metrics.set_alert_counts({"pending": 2, "sent": 5})

    response = scrape(metrics)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    assert value(text, "news_monitor_polls_total", feed="wire", outcome="ok") == 2
    assert value(text, "news_monitor_polls_total", feed="wire", outcome="not_modified") == 1
    assert value(text, "news_monitor_polls_total", feed="wire", outcome="error") == 1
    assert value(text, "news_monitor_polls_total", feed="bbc-world", outcome="error") == 2
    assert value(text, "news_monitor_poll_errors_total", feed="wire", stage="retrieve") == 1
    assert value(text, "news_monitor_poll_errors_total", feed="bbc-world", stage="parse") == 1
    assert value(text, "news_monitor_poll_errors_total", feed="bbc-world", stage="internal") == 1
    assert value(text, "news_monitor_items_total", feed="wire") == 5
    assert value(text, "news_monitor_matches_total", rule="xi-putin") == 3
    assert value(text, "news_monitor_alerts", status="pending") == 2
    assert value(text, "news_monitor_alerts", status="sent") == 5
    assert value(text, "news_monitor_alerts", status="dead") == 0
    assert value(text, "news_monitor_deliveries_total", channel="newsroom", outcome="sent") == 2
    assert value(text, "news_monitor_deliveries_total", channel="newsroom", outcome="retry") == 1
    assert value(text, "news_monitor_deliveries_total", channel="me", outcome="dead") == 1
    latency = "news_monitor_delivery_latency_seconds"
    assert value(text, f"{latency}_count", channel="newsroom") == 2
    assert value(text, f"{latency}_sum", channel="newsroom") == pytest.approx(181.5)
    assert value(text, f"{latency}_bucket", channel="newsroom", le="1.0") == 0
    assert value(text, f"{latency}_bucket", channel="newsroom", le="2.0") == 1
    assert value(text, f"{latency}_bucket", channel="newsroom", le="300.0") == 2
    assert value(text, "news_monitor_build_info", version=__version__) == 1
    assert value(text, "process_resident_memory_bytes") > 0


def test_declared_names_are_exported_at_zero_before_anything_happens() -> None:
    metrics = Metrics()
    metrics.declare(feeds=["wire"], rules=["xi-putin"], channels=["me"])
    text = scrape(metrics).text
    assert value(text, "news_monitor_polls_total", feed="wire", outcome="error") == 0
    assert value(text, "news_monitor_items_total", feed="wire") == 0
    assert value(text, "news_monitor_matches_total", rule="xi-putin") == 0
    assert value(text, "news_monitor_deliveries_total", channel="me", outcome="sent") == 0
    assert value(text, "news_monitor_delivery_latency_seconds_count", channel="me") == 0


def test_an_alert_status_without_rows_drops_to_zero() -> None:
    metrics = Metrics()
    metrics.set_alert_counts({"pending": 4, "held": 1})
    metrics.set_alert_counts({"sent": 4})
    text = scrape(metrics).text
    assert value(text, "news_monitor_alerts", status="pending") == 0
    assert value(text, "news_monitor_alerts", status="held") == 0
    assert value(text, "news_monitor_alerts", status="sent") == 4


def test_unknown_outcomes_are_refused() -> None:
    metrics = Metrics()
    with pytest.raises(ValueError, match="unknown poll outcome 'okay'"):
        metrics.observe_poll("wire", "okay")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown delivery outcome"):
        metrics.observe_delivery("me", "failed")  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStorage]:
    with open_storage(tmp_path / "var" / "news-monitor.db") as store:
        store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml")], NOW)
        yield store


def test_the_refresh_hook_reads_the_store_on_the_event_loop_at_each_scrape(store: SqliteStorage) -> None:
    # SQLite refuses a connection used from another thread, so a refresh run
    # anywhere but on the event loop would leave the gauges at zero.
    feed = store.feeds()[0]
    writes = tuple(
        ItemWrite(
            feed.id,
            Item(guid=guid, link=None, title=f"Story {guid}", text="Text."),
            alerts=(AlertWrite("r", "me", AlertStatus.PENDING),),
        )
        for guid in ("a", "b", "c")
    )
    store.write(Intent(NOW, writes, FeedWrite(feed.id, NOW, NOW + timedelta(minutes=10), "every 10m", None, None, "Wire")))
    metrics = Metrics()

    async def test(_: HealthServer, client: httpx.AsyncClient) -> tuple[str, str]:
        before = (await client.get("/metrics")).text
        first, *_ = store.due_alerts(NOW)
        store.mark_failed(first.id, "HTTP 500", None)
        return before, (await client.get("/metrics")).text

    before, after = serve(
        metrics,
        HealthCheck(metrics, writable).status,
        test,
        refresh=lambda: metrics.set_alert_counts(store.alert_counts()),
    )
    assert value(before, "news_monitor_alerts", status="pending") == 3
    assert value(after, "news_monitor_alerts", status="pending") == 2
    assert value(after, "news_monitor_alerts", status="dead") == 1


def test_a_failing_refresh_still_serves_the_counters() -> None:
    metrics = Metrics()
    metrics.observe_match("r")

    def broken() -> None:
        raise RuntimeError("store closed")

    response = scrape(metrics, refresh=broken)
    assert response.status_code == 200
    assert value(response.text, "news_monitor_matches_total", rule="r") == 1


# --- /healthz --------------------------------------------------------------------


def get_health(check: HealthCheck, *steps: Callable[[], None]) -> list[httpx.Response]:
    """GET /healthz once, then once more after each step."""

    async def test(_: HealthServer, client: httpx.AsyncClient) -> list[httpx.Response]:
        responses = [await client.get("/healthz")]
        for step in steps:
            step()
            responses.append(await client.get("/healthz"))
        return responses

    return serve(check.metrics, check.status, test)


def test_healthy_while_the_scheduler_ticks_and_the_database_takes_writes(store: SqliteStorage) -> None:
    assert store.path is not None
    metrics = Metrics()
    check = HealthCheck(metrics, sqlite_write_probe(store.path))
    check.tick()
    [response] = get_health(check)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "status": "ok",
        "problems": [],
        "last_tick_age_seconds": pytest.approx(0, abs=1),
        "database": "writable",
    }
    text = scrape(metrics).text
    assert value(text, "news_monitor_database_writable") == 1
    assert value(text, "news_monitor_last_tick_timestamp_seconds") == pytest.approx(time.time(), abs=60)


def test_unhealthy_before_the_first_tick_and_when_ticks_stop() -> None:
    clock = Clock()
    check = HealthCheck(Metrics(), writable, max_tick_age=30, clock=clock)

    def later(seconds: float) -> Callable[[], None]:
        def step() -> None:
            clock.now += seconds

        return step

    first, ticked, late = get_health(check, check.tick, later(45))
    assert first.status_code == 503
    assert first.json()["problems"] == ["the scheduler has not run the poll tick yet"]
    assert ticked.status_code == 200
    assert late.status_code == 503
    assert late.json()["problems"] == ["the scheduler has not run the poll tick for 45s (limit 30s)"]
    assert late.json()["last_tick_age_seconds"] == 45


def test_unhealthy_while_the_database_refuses_writes(store: SqliteStorage) -> None:
    assert store.path is not None
    clock = Clock()
    metrics = Metrics()
    check = HealthCheck(metrics, sqlite_write_probe(store.path), probe_interval=5, clock=clock)
    check.tick()
    # Another connection holding the write lock: our writes would have to wait.
    locker = sqlite3.connect(store.path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")

    def release() -> None:
        locker.execute("ROLLBACK")

    def later() -> None:
        clock.now += 5
        check.tick()

    locked, cached, recovered = get_health(check, release, later)
    locker.close()
    assert locked.status_code == 503
    assert locked.json()["problems"] == ["the database does not accept writes: database is locked"]
    assert locked.json()["database"] == "failing"
    # The probe's answer is kept for probe_interval: a scrape storm costs one probe.
    assert cached.status_code == 503
    assert recovered.status_code == 200
    assert value(scrape(metrics).text, "news_monitor_database_writable") == 1


def test_the_probe_runs_at_most_once_per_interval() -> None:
    clock = Clock()
    calls = []
    check = HealthCheck(Metrics(), lambda: calls.append(clock.now), probe_interval=5, clock=clock)

    def later() -> None:
        clock.now += 5

    get_health(check, lambda: None, lambda: None, later, lambda: None)
    assert calls == [1000.0, 1005.0]


def test_a_health_check_that_raises_answers_503() -> None:
    def broken() -> HealthStatus:
        raise RuntimeError("bug")

    async def test(_: HealthServer, client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/healthz")

    response = serve(Metrics(), broken, test)
    assert response.status_code == 503
    assert response.json()["problems"] == ["the health check itself failed: RuntimeError('bug')"]


# --- HTTP ------------------------------------------------------------------------


def test_paths_methods_and_head() -> None:
    metrics = Metrics()
    check = HealthCheck(metrics, writable, clock=Clock())
    check.tick()

    async def test(_: HealthServer, client: httpx.AsyncClient) -> dict[str, httpx.Response]:
        return {
            "root": await client.get("/"),
            "trailing slash": await client.get("/metrics/"),
            "query": await client.get("/metrics?name[]=news_monitor_alerts"),
            "post": await client.post("/metrics", content=b"x"),
            "delete unknown": await client.delete("/nope"),
            "head": await client.head("/healthz"),
            "get": await client.get("/healthz"),
        }

    answers = serve(metrics, check.status, test)
    assert answers["root"].status_code == 404
    assert answers["trailing slash"].status_code == 404
    assert answers["query"].status_code == 200
    assert answers["post"].status_code == 405
    assert answers["post"].headers["allow"] == "GET, HEAD"
    assert answers["delete unknown"].status_code == 404
    assert answers["head"].status_code == 200
    assert answers["head"].content == b""
    assert answers["head"].headers["content-length"] == str(len(answers["get"].content))
    assert answers["get"].headers["cache-control"] == "no-store"


def test_bad_requests_get_an_error_or_a_closed_connection_and_the_server_keeps_serving() -> None:
    metrics = Metrics()
    check = HealthCheck(metrics, writable)
    check.tick()

    async def test(server: HealthServer, client: httpx.AsyncClient) -> tuple[dict[str, bytes], httpx.Response]:
        port = server.port
        answers = {
            "garbage": await raw(port, b"\x00\xff\xfe garbage\r\n\r\n"),
            "http/2 preface": await raw(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            # HTTP/1.1 requests name their Host (RFC 9112 3.2; without it the answer is 400 whatever else is wrong).
            "long line": await raw(port, b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
            "many headers": await raw(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 500 + b"\r\n"),
            "no host": await raw(port, b"GET /healthz HTTP/1.1\r\n\r\n"),
            "eof mid-request": await raw(port, b"GET /healthz HTTP/1.1\r\nHost: x"),
            "tls hello": await raw(port, bytes.fromhex("160301020001"), close_write=False),
            "bare newlines": await raw(port, b"GET /healthz HTTP/1.0\n\n"),
        }
        return answers, await client.get("/healthz")

    answers, after = serve(metrics, check.status, test, request_timeout=0.5)
    assert answers["garbage"].startswith(b"HTTP/1.1 400 ")
    assert answers["http/2 preface"].startswith(b"HTTP/1.1 400 ")
    assert answers["long line"].startswith(b"HTTP/1.1 431 ")
    assert answers["many headers"].startswith(b"HTTP/1.1 431 ")
    assert answers["no host"].startswith(b"HTTP/1.1 400 ")
    assert answers["eof mid-request"] == b""
    assert answers["tls hello"].startswith(b"HTTP/1.1 400 ")  # not HTTP from its first bytes: refused at once
    assert answers["bare newlines"].startswith(b"HTTP/1.1 200 ")
    assert after.status_code == 200


def test_a_slow_client_does_not_hold_up_others() -> None:
    metrics = Metrics()
    check = HealthCheck(metrics, writable)
    check.tick()

    async def test(server: HealthServer, client: httpx.AsyncClient) -> tuple[bytes, int]:
        _, slow = await asyncio.open_connection("127.0.0.1", server.port)
        slow.write(b"GET /healthz HTTP/1.1\r\n")
        status = (await client.get("/healthz")).status_code
        answer = await raw(server.port, b"GET /metrics HTTP/1.1\r\n", close_write=False)
        slow.close()
        return answer, status

    answer, status = serve(metrics, check.status, test, request_timeout=0.3)
    assert status == 200
    assert answer == b""


def test_stop_closes_open_connections_and_the_port() -> None:
    async def run() -> None:
        server = HealthServer(Metrics(), lambda: HealthStatus(True), port=0)
        await server.start()
        port = server.port
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        await asyncio.sleep(0.05)
        await asyncio.wait_for(server.stop(), timeout=5)
        with pytest.raises((ConnectionError, OSError)):
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout=5)
        writer.close()

    asyncio.run(run())


# --- where it listens --------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "monitor.example.org"])
def test_non_loopback_addresses_are_refused_unless_allowed(host: str) -> None:
    metrics = Metrics()
    with pytest.raises(ConfigError, match="no authentication"):
        HealthServer(metrics, lambda: HealthStatus(True), host)
    HealthServer(metrics, lambda: HealthStatus(True), host, allow_remote=True)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "::1", "localhost"])
def test_loopback_addresses_are_accepted(host: str) -> None:
    HealthServer(Metrics(), lambda: HealthStatus(True), host)


def test_a_port_in_use_is_reported() -> None:
    async def run() -> None:
        first = HealthServer(Metrics(), lambda: HealthStatus(True), port=0)
        await first.start()
        try:
            second = HealthServer(Metrics(), lambda: HealthStatus(True), port=first.port)
            with pytest.raises(HealthServerError, match=f"cannot listen on 127.0.0.1:{first.port}") as raised:
                await second.start()
            assert isinstance(raised.value, MonitorError) and isinstance(raised.value, OSError)
        finally:
            await first.stop()

    asyncio.run(run())
