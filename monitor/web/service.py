"""The dashboard started by its two owners: the daemon (beside its work) and `news-monitor web` (alone).

In the daemon it shares the daemon's metrics, health check and config (a
reload shows at once), and a retried alert is delivered at the next moment. Alone, it
reads the database and nothing else: its /healthz says whether the
database can be read, its /metrics counts the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.config import web_bind_problem
from monitor.errors import ConfigError
from monitor.health import HealthStatus, Metrics
from monitor.web.app import WebContext, create_app
from monitor.web.reader import Reader
from monitor.web.server import WebServer, WebServerError
from monitor.web.surges import surge_source

if TYPE_CHECKING:
    from monitor.assembly import Setup
    from monitor.daemon import Monitor

log = logging.getLogger("monitor.web")

__all__ = ["Dashboard", "WebServerError", "run_alone", "start_for_daemon"]


class Dashboard:
    """A running dashboard: its server and its reader, stopped together."""

    def __init__(self, server: WebServer, reader: Reader):
        self.server = server
        self.reader = reader

    @property
    def url(self) -> str:
        return self.server.url

    async def stop(self) -> None:
        await self.server.stop()
        await self.reader.aclose()


def _token(setup: Setup, host: str, environ: dict[str, str] | None = None) -> str | None:
    """The token every page asks for (None: none set); ConfigError when ``host`` may not be served."""
    settings = setup.config.settings.web
    environ = dict(os.environ if environ is None else environ)
    problem = web_bind_problem(host, settings.allow_remote, settings.token_env, environ)
    if problem:
        raise ConfigError([problem])
    return environ.get(settings.token_env) or None


async def _start(context: WebContext, host: str, port: int) -> Dashboard:
    server = WebServer(create_app(context), host, port)
    try:
        await server.start()
    except BaseException:
        await context.reader.aclose()
        raise
    return Dashboard(server, context.reader)


async def start_for_daemon(monitor: Monitor, *, on_retry: Callable[[], None]) -> Dashboard:
    """The daemon's dashboard on web.host:web.port; WebServerError when that address cannot be bound.

    ``on_retry``: a dead alert was made due again from the dashboard (the daemon delivers it now).
    """
    setup = monitor.setup
    settings = setup.config.settings.web
    token = _token(setup, settings.host)

    async def health() -> HealthStatus:
        return monitor.health.status()

    async def refresh() -> None:
        monitor.metrics.set_alert_counts(monitor.store.alert_counts())  # on the loop: the daemon's connection

    context = WebContext(
        setup=lambda: monitor.setup,
        reader=Reader(setup.config.settings.database),
        surges=surge_source(lambda: monitor.setup),
        metrics=monitor.metrics,
        health=health,
        refresh_metrics=refresh,
        on_retry=on_retry,
        token=token,
        loopback_only=token is None,
    )
    return await _start(context, settings.host, settings.port)


async def run_alone(setup: Setup, host: str, port: int) -> None:
    """`news-monitor web`: the dashboard on its own, until SIGTERM or SIGINT."""
    token = _token(setup, host)
    reader = Reader(setup.config.settings.database)
    metrics = Metrics()

    async def health() -> HealthStatus:
        try:
            await reader.read(lambda store: store.count("feeds"))
        except Exception as exc:
            return HealthStatus(False, (f"the database cannot be read: {exc}",), {"database": "failing"})
        return HealthStatus(True, (), {"database": "readable"})

    async def refresh() -> None:
        metrics.set_alert_counts(await reader.read(lambda store: store.alert_counts()))

    context = WebContext(
        setup=lambda: setup,
        reader=reader,
        surges=surge_source(lambda: setup),
        metrics=metrics,
        health=health,
        refresh_metrics=refresh,
        token=token,
        loopback_only=token is None,
    )
    dashboard = await _start(context, host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await dashboard.stop()
