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

The daemon's other listeners (``health:``, the WebSub callback) are served
the same way, each as a :class:`Listener`: its own words and log events, a
deadline for a request head (a client that never finishes one is cut off),
request heads uvicorn cannot parse answered 400 (431 when too large, 501 for
a transfer coding other than chunked), one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from monitor.errors import MonitorError

log = logging.getLogger("monitor.web")

MAX_CONNECTIONS = 32  # at once; beyond it uvicorn answers 503
KEEP_ALIVE_SECONDS = 5
MAX_HEAD_BYTES = 16 * 1024  # of a request line and headers
STOP_GRACE_SECONDS = 3


class WebServerError(MonitorError, OSError):
    """The dashboard could not listen on its address."""


_QUIET = logging.getLogger("monitor.web.listener")  # uvicorn's per-request warnings, said in our events instead
_QUIET.setLevel(logging.ERROR)

CannotListen = Callable[[str, str, OSError], Exception]  # (host:port, reason, the OSError) -> what to raise


@dataclass(frozen=True)
class Listener:
    """A listener of the daemon other than the dashboard: who it is in the log and in errors, and its bounds."""

    logger: logging.Logger
    listening_event: str  # logged with its url once it listens
    bad_request_event: str  # logged with status and reason for a request head that cannot be parsed
    cannot_listen: CannotListen
    max_connections: int  # at once; beyond it, 503
    head_timeout: float  # seconds to send a whole request head
    max_head_bytes: int = 64 * 1024  # an unfinished request head, at most
    bad_request_level: int = logging.INFO


_REFUSALS = {
    431: "request line or header too long",
    501: "only chunked transfer coding is understood",
}


def _listener_protocol(listener: Listener) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a deadline for the request head and refusals in the listener's own words."""

    class Protocol(H11Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.logger = _QUIET
            self._why: int | None = None  # the status h11 suggests for a head it refused
            self._head_timer: asyncio.TimerHandle | None = None
            next_event = self.conn.next_event

            def next_event_noting_why() -> Any:
                try:
                    return next_event()
                except h11.RemoteProtocolError as exc:
                    self._why = exc.error_status_hint
                    raise

            self.conn.next_event = next_event_noting_why  # type: ignore[method-assign]

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = self.loop.call_later(listener.head_timeout, self._head_late)

        def _head_late(self) -> None:
            if self.cycle is None:
                self.transport.abort()  # a slow or silent client gets no more of our time

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            status = self._why if self._why in _REFUSALS else 400
            reason = _REFUSALS.get(status, "malformed request")
            listener.logger.log(
                listener.bad_request_level, listener.bad_request_event, extra={"status": status, "reason": reason}
            )
            headers = [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),
            ]
            for event in (
                h11.Response(status_code=status, headers=headers, reason=HTTPStatus(status).phrase.encode()),
                h11.Data(data=reason.encode() + b"\n"),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
            self.transport.close()

    return Protocol


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon (or `news-monitor web`) handles the signals on its loop


def bind(host: str, port: int, cannot_listen: CannotListen | None = None) -> socket.socket:
    """A listening socket on host:port; WebServerError (or what ``cannot_listen`` makes) if it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # "Address already in use"
        if cannot_listen is not None:
            raise cannot_listen(where, reason, exc) from exc
        raise WebServerError(
            f"the dashboard cannot listen on {where}: {reason}; "
            "free that port or set web.port to another one (web.enabled: false turns the dashboard off)"
        ) from exc
    sock.setblocking(False)
    return sock


class WebServer:
    """The dashboard's HTTP server on the current event loop: ``await start()``, later ``await stop()``.

    With ``listener``, one of the daemon's other listeners, with its words, events and bounds.
    """

    def __init__(self, app: Any, host: str, port: int, *, listener: Listener | None = None):
        self.app = app
        self.listener = listener
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        listener = self.listener
        sock = bind(self.host, self.port, listener.cannot_listen if listener else None)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_listener_protocol(listener) if listener else "h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            limit_concurrency=listener.max_connections if listener else MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            h11_max_incomplete_event_size=listener.max_head_bytes if listener else MAX_HEAD_BYTES,
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
        if listener is not None:
            listener.logger.info(listener.listening_event, extra={"url": self.url})
        else:
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
        self._server = self._task = None
        if self.listener is None:
            log.info("web.stopped", extra={"url": self.url})
