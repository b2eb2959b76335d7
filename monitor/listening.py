"""What the daemon's HTTP listeners share without loading the web stack: where they may listen, plain answers,
and :class:`ServedListener` (address, start and stop).

The listeners themselves (``/healthz`` and ``/metrics`` of ``health:``, the
WebSub callback, the dashboard) are ASGI apps served by uvicorn through
:mod:`monitor.web.server`, imported only when one is switched on.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class Response:
    """One answer: status, body, its content type and any further headers (sent with no-store and close)."""

    status: HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def text(status: HTTPStatus, message: str = "", *headers: tuple[str, str]) -> Response:
    """A plain-text response: ``message`` (the status phrase if none) and a newline."""
    return Response(status, (message or status.phrase).encode() + b"\n", headers=headers)


class ServedListener:
    """A listener of the daemon served by uvicorn on the running event loop: its address, start and stop.

    :mod:`monitor.web.server` is imported when it starts. A subclass sets ``host`` and ``requested_port``
    and starts with :meth:`_serve`, giving its ASGI app and the words and bounds of its listener.
    """

    host: str
    requested_port: int
    _server: Any = None  # monitor.web.server.WebServer once started

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose when asked for port 0)."""
        return self.requested_port if self._server is None else int(self._server.port)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def _serve(
        self,
        app: Any,
        *,
        logger: logging.Logger,
        events: str,
        error: Callable[[int | None, str], Exception],
        name: str,
        advice: str,
        max_connections: int,
        head_timeout: float,
        bad_request_level: int = logging.INFO,
    ) -> None:
        """Listen and serve ``app``: log events ``<events>.listening`` and ``<events>.bad_request``; an address
        that cannot be listened on raises ``error`` saying "<name>: cannot listen on <where>: <reason>; <advice>"."""
        from monitor.web.server import Listener, WebServer

        def cannot_listen(where: str, reason: str, exc: OSError) -> Exception:
            return error(exc.errno, f"{name}: cannot listen on {where}: {reason}; {advice}")

        listener = Listener(
            logger=logger,
            listening_event=f"{events}.listening",
            bad_request_event=f"{events}.bad_request",
            cannot_listen=cannot_listen,
            max_connections=max_connections,
            head_timeout=head_timeout,
            bad_request_level=bad_request_level,
        )
        server = WebServer(app, self.host, self.requested_port, listener=listener)
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Stop listening and close the connections still open."""
        if self._server is not None:
            await self._server.stop()
            self._server = None
