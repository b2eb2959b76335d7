"""The optional health and metrics endpoint: ``/healthz`` and ``/metrics`` on loopback.

    daemon ── Metrics.observe_* (counters)  ┐
           ── HealthCheck.tick (poll tick)  ├─ HealthServer (uvicorn on the daemon's event loop)
           ── refresh hook (store gauges)   ┘     GET /healthz  200 | 503, JSON
                                                  GET /metrics  Prometheus text format

The server runs on the daemon's own event loop, so everything it calls (the
database probe, the refresh hook that reads the store) runs on the thread that
owns the SQLite connection. A stalled loop does not answer at all, which a
health checker counts as unhealthy too.

There is no authentication, so the server refuses non-loopback addresses
unless told explicitly that they are wanted. Its HTTP is uvicorn's, through
:mod:`monitor.web.server` (imported when it starts, so a daemon without a
``health:`` listener never loads the web stack); its app is
:func:`monitor.web.listeners.health_app`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from http import HTTPStatus
from typing import Any, Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from monitor import __version__
from monitor.errors import ConfigError, MonitorError
from monitor.listening import Response, ServedListener, is_loopback

log = logging.getLogger("monitor.health")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9464
# The format generate_latest writes (the classic text format every Prometheus reads).
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PollOutcome = Literal["ok", "not_modified", "error"]
PollStage = Literal["retrieve", "parse", "feed", "internal"]
DeliveryOutcome = Literal["sent", "retry", "dead"]
POLL_OUTCOMES: tuple[PollOutcome, ...] = ("ok", "not_modified", "error")
POLL_STAGES: tuple[PollStage, ...] = ("retrieve", "parse", "feed", "internal")
DELIVERY_OUTCOMES: tuple[DeliveryOutcome, ...] = ("sent", "retry", "dead")
ALERT_STATUSES = ("pending", "sent", "dead")

# From "the channel took it at once" to "it got through after a day of retries".
LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, 86400)


class HealthServerError(MonitorError, OSError):
    """The health endpoint could not listen on its address."""


# --- metrics -------------------------------------------------------------------


class Metrics:
    """What the daemon counts, in a registry of its own (not prometheus_client's global one)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        Info("news_monitor_build", "The running news-monitor.", registry=registry).info({"version": __version__})
        self.polls = Counter("news_monitor_polls", "Feed polls by outcome.", ["feed", "outcome"], registry=registry)
        self.poll_errors = Counter(
            "news_monitor_poll_errors",
            "Failed feed polls by the stage that failed.",
            ["feed", "stage"],
            registry=registry,
        )
        self.items = Counter("news_monitor_items", "New or changed items stored.", ["feed"], registry=registry)
        self.matches = Counter("news_monitor_matches", "Items a watch rule matched.", ["rule"], registry=registry)
        self.alerts = Gauge("news_monitor_alerts", "Alerts in the outbox by status.", ["status"], registry=registry)
        self.deliveries = Counter(
            "news_monitor_deliveries",
            "Send attempts by channel and outcome.",
            ["channel", "outcome"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "news_monitor_delivery_latency_seconds",
            "From the alert's commit to the outbox until its channel accepted it.",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.last_tick = Gauge(
            "news_monitor_last_tick_timestamp_seconds",
            "When the scheduler last ran the poll tick (Unix time).",
            registry=registry,
        )
        self.database_writable = Gauge(
            "news_monitor_database_writable", "1 if the last database probe could write, else 0.", registry=registry
        )
        self._alert_statuses = set(ALERT_STATUSES)
        for status in ALERT_STATUSES:
            self.alerts.labels(status)

    def declare(self, *, feeds: Iterable[str] = (), rules: Iterable[str] = (), channels: Iterable[str] = ()) -> None:
        """Create the series of these names at zero, so that rates work from their first event."""
        for feed in feeds:
            self.items.labels(feed)
            for outcome in POLL_OUTCOMES:
                self.polls.labels(feed, outcome)
        for rule in rules:
            self.matches.labels(rule)
        for channel in channels:
            self.delivery_latency.labels(channel)
            for delivery in DELIVERY_OUTCOMES:
                self.deliveries.labels(channel, delivery)

    def observe_poll(self, feed: str, outcome: PollOutcome, *, items: int = 0, stage: PollStage | None = None) -> None:
        """Count one poll; ``stage`` says where an ``error`` happened (``internal`` for a crash)."""
        if outcome not in POLL_OUTCOMES:
            raise ValueError(f"unknown poll outcome {outcome!r}; expected one of {', '.join(POLL_OUTCOMES)}")
        self.polls.labels(feed, outcome).inc()
        if outcome == "error":
            self.poll_errors.labels(feed, stage or "internal").inc()
        if items:
            self.items.labels(feed).inc(items)

    def observe_match(self, rule: str, count: int = 1) -> None:
        self.matches.labels(rule).inc(count)

    def observe_delivery(self, channel: str, outcome: DeliveryOutcome, latency: timedelta | None = None) -> None:
        """Count one send attempt; ``latency`` (sent alerts only) is from the alert's creation to now."""
        if outcome not in DELIVERY_OUTCOMES:
            raise ValueError(f"unknown delivery outcome {outcome!r}; expected one of {', '.join(DELIVERY_OUTCOMES)}")
        self.deliveries.labels(channel, outcome).inc()
        if outcome == "sent" and latency is not None:
            # A clock stepped backwards must not produce a negative observation.
            self.delivery_latency.labels(channel).observe(max(0.0, latency.total_seconds()))

    def set_alert_counts(self, counts: Mapping[str, int]) -> None:
        """Follow ``Store.alert_counts()``; a status that has no rows any more drops to zero."""
        self._alert_statuses.update(counts)
        for status in self._alert_statuses:
            self.alerts.labels(status).set(counts.get(status, 0))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


# --- health --------------------------------------------------------------------


@dataclass(frozen=True)
class HealthStatus:
    """The answer of ``/healthz``: healthy or not, why not, and the figures behind it."""

    healthy: bool
    problems: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        payload = {"status": "ok" if self.healthy else "unhealthy", "problems": list(self.problems), **self.details}
        return json.dumps(payload, default=str).encode() + b"\n"


class HealthCheck:
    """Healthy while the scheduler ticks and the database accepts writes.

    ``probe_database`` raises when the database would refuse a write; it runs
    on the caller's thread (the event loop), at most once per
    ``probe_interval`` seconds, and its answer is kept in between. Ages are
    measured on ``clock`` (monotonic by default, so that a step of the wall
    clock cannot make a running daemon look stalled).
    """

    def __init__(
        self,
        metrics: Metrics,
        probe_database: Callable[[], None],
        *,
        max_tick_age: float = 60.0,
        probe_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.metrics = metrics
        self.probe_database = probe_database
        self.max_tick_age = max_tick_age
        self.probe_interval = probe_interval
        self.clock = clock
        self._last_tick: float | None = None
        self._probed_at: float | None = None
        self._database_problem: str | None = None

    def tick(self) -> None:
        """Call from the scheduler's poll tick."""
        self._last_tick = self.clock()
        self.metrics.last_tick.set_to_current_time()

    def status(self) -> HealthStatus:
        now = self.clock()
        problems = []
        tick_age = None if self._last_tick is None else now - self._last_tick
        if tick_age is None:
            problems.append("the scheduler has not run the poll tick yet")
        elif tick_age > self.max_tick_age:
            problems.append(
                f"the scheduler has not run the poll tick for {tick_age:.0f}s (limit {self.max_tick_age:.0f}s)"
            )
        database = self._probe(now)
        if database is not None:
            problems.append(f"the database does not accept writes: {database}")
        details = {
            "last_tick_age_seconds": None if tick_age is None else round(tick_age, 3),
            "database": "writable" if database is None else "failing",
        }
        return HealthStatus(healthy=not problems, problems=tuple(problems), details=details)

    def _probe(self, now: float) -> str | None:
        if self._probed_at is None or now - self._probed_at >= self.probe_interval:
            try:
                self.probe_database()
                self._database_problem = None
            except Exception as exc:  # whatever the probe raises means "not writable", with its reason
                self._database_problem = str(exc) or type(exc).__name__
                log.warning("health.database_probe_failed", extra={"error": self._database_problem})
            self._probed_at = now
            self.metrics.database_writable.set(0 if self._database_problem else 1)
        return self._database_problem


# --- the HTTP server -----------------------------------------------------------


class HealthServer(ServedListener):
    """``/healthz`` and ``/metrics`` served by uvicorn on the running event loop: ``await start()``, ``await stop()``.

    One request per connection. ``refresh`` is called before each scrape of
    ``/metrics`` to set gauges from the store (it runs on the event loop, so it
    may use the store). A client has ``request_timeout`` seconds to send its
    request head; nothing a client sends can raise out of the server.
    """

    max_connections = 32

    def __init__(
        self,
        metrics: Metrics,
        health: Callable[[], HealthStatus],
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        refresh: Callable[[], None] | None = None,
        allow_remote: bool = False,
        request_timeout: float = 5.0,
    ):
        if not allow_remote and not is_loopback(host):
            raise ConfigError(
                [
                    f"health endpoint: refusing to listen on {host!r}: it has no authentication, so it listens on "
                    "a loopback address (127.0.0.1 or ::1) unless a non-loopback address is explicitly allowed"
                ]
            )
        self.metrics = metrics
        self.health = health
        self.host = host
        self.requested_port = port
        self.refresh = refresh
        self.request_timeout = request_timeout

    async def start(self) -> None:
        from monitor.web.listeners import health_app

        await self._serve(
            health_app(self.metrics, self.health, self.refresh, log),
            logger=log,
            events="health",
            error=HealthServerError,
            name="health endpoint",
            advice="choose another port or stop what is using it",
            max_connections=self.max_connections,
            head_timeout=self.request_timeout,
            bad_request_level=logging.DEBUG,
        )


def healthz_response(health: Callable[[], HealthStatus]) -> Response:
    """The answer of ``/healthz`` (here and on the dashboard): 200 or 503, the status as JSON."""
    try:
        status = health()
    except Exception as exc:
        log.exception("health.check_failed")
        status = HealthStatus(healthy=False, problems=(f"the health check itself failed: {exc!r}",))
    code = HTTPStatus.OK if status.healthy else HTTPStatus.SERVICE_UNAVAILABLE
    return Response(code, status.to_json(), "application/json")


def metrics_response(metrics: Metrics, refresh: Callable[[], None] | None = None) -> Response:
    """The answer of ``/metrics`` (here and on the dashboard); ``refresh`` sets the gauges from the store first."""
    if refresh is not None:
        try:
            refresh()
        except Exception:  # serve the counters anyway; the gauges keep their last values
            log.exception("health.refresh_failed")
    return Response(HTTPStatus.OK, metrics.exposition(), METRICS_CONTENT_TYPE)
