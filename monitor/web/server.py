"""uvicorn serving the dashboard on the running event loop, leaving the process's signals alone.

``uvicorn.Server.serve`` installs its own SIGINT/SIGTERM handlers with
``signal.signal`` for as long as it serves (``capture_signals``), which would
take SIGTERM from the daemon's loop handler, and re-raises the signals it
caught when it stops. Here the owner of the loop decides when to stop:
``capture_signals`` does nothing, and :meth:`WebServer.stop` ends the server.

The socket is bound here, before uvicorn starts, so a port already taken is a
:class:`WebServerError` naming the address (uvicorn itself would ``sys.exit``).
What a client may cost is bounded: connections at once (``limit_concurrency``;
beyond it, 503), keep-alive, the size of a request head (h11), and a graceful
stop of a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from monitor.errors import MonitorError

log = logging.getLogger("monitor.web")

MAX_CONNECTIONS = 32  # at once; beyond it uvicorn answers 503
KEEP_ALIVE_SECONDS = 5
MAX_HEAD_BYTES = 16 * 1024  # of a request line and headers
STOP_GRACE_SECONDS = 3


class WebServerError(MonitorError, OSError):
    """The dashboard could not listen on its address."""


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon (or `news-monitor web`) handles the signals on its loop


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; WebServerError (naming the address and what to do) if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # "Address already in use"
        raise WebServerError(
            f"the dashboard cannot listen on {where}: {reason}; "
            "free that port or set web.port to another one (web.enabled: false turns the dashboard off)"
        ) from exc
    sock.setblocking(False)
    return sock


class WebServer:
    """The dashboard's HTTP server on the current event loop: ``await start()``, later ``await stop()``."""

    def __init__(self, app: Any, host: str, port: int):
        self.app = app
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            timeout_graceful_shutdown=STOP_GRACE_SECONDS,
        )
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # not its start and stop chatter
        self._server = _Server(config)
        self._task = asyncio.get_running_loop().create_task(self._server.serve(sockets=[sock]), name="web")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise WebServerError(f"the dashboard on {self.url} stopped as it started")
            await asyncio.sleep(0.01)
        log.info("web.listening", extra={"url": self.url})

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE_SECONDS + 2)
        except TimeoutError:
            self._server.force_exit = True
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        log.info("web.stopped", extra={"url": self.url})
