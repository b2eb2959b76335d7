"""The daemon's optional listeners, started once its scheduler runs: the health server, the dashboard, the control socket.

Each is off (None) when its settings say so or, for the dashboard and the control socket, when it cannot
listen: the daemon goes on without it, and no alert waits for it. :class:`monitor.daemon.Monitor` stops them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from monitor import control
from monitor.health import HealthServer

if TYPE_CHECKING:
    from monitor.daemon import Monitor

__all__ = ["start_control", "start_dashboard", "start_health_server"]

log = logging.getLogger("monitor.daemon")


async def start_health_server(monitor: Monitor) -> HealthServer | None:
    """``/healthz`` and ``/metrics``, when ``health.enabled``."""
    settings = monitor.config.settings.health
    if not settings.enabled:
        return None
    server = HealthServer(
        monitor.metrics,
        monitor.health.status,
        settings.host,
        settings.port,
        refresh=lambda: monitor.metrics.set_alert_counts(monitor.store.alert_counts()),
        allow_remote=settings.allow_remote,
    )
    await server.start()
    return server


async def start_dashboard(monitor: Monitor) -> Any:
    """The web dashboard (monitor.web, imported only when it is on); a port it cannot bind stops no alert."""
    if not monitor.config.settings.web.enabled:
        return None
    from monitor.web.service import WebServerError, start_for_daemon

    try:
        return await start_for_daemon(monitor, on_retry=monitor.deliver_soon)
    except WebServerError as exc:
        log.error("web.unavailable", extra={"error": str(exc), "note": "the daemon goes on without its dashboard"})
        return None


async def start_control(monitor: Monitor) -> control.ControlServer | None:
    """The local control socket through which `poll --feed NAME` asks this daemon to poll (Monitor.answer)."""
    server = control.ControlServer(control.socket_path(monitor.config.settings), monitor.answer)
    return server if await server.start() else None
