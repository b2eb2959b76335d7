"""The WebSub callback endpoint: an HTTP listener on the daemon's event loop.

    hub ── https://<websub.callback>/<token> ── reverse proxy (TLS) ── websub.listen ── CallbackServer
        ── uvicorn (monitor.web.server) ── callback_app (monitor.web.listeners): one bounded Request ── handler (monitor.subscriber.Subscriber.handle) ── Response, close

Hubs reach it through the public ``websub.callback`` URL; a reverse proxy
that terminates TLS passes their requests on to ``websub.listen``. Anyone can
send it anything, so everything it reads is bounded: one request per
connection; the request line and each header by size, the headers by count,
the query by its number of fields; the body by a byte cap (``poll.max_bytes``)
before a byte of it is read; the whole read by a deadline, the handler by
another; the connections open at once by a number. Nothing a client sends can
raise out of the server. Like the health endpoint it listens on loopback
unless told otherwise. Starlette and uvicorn are imported when it starts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from monitor.errors import ConfigError, MonitorError
from monitor.listening import Response, ServedListener, is_loopback, text

__all__ = ["Admit", "CallbackServer", "CallbackServerError", "Handler", "Request", "Response", "text"]

log = logging.getLogger("monitor.callback")

MAX_CONNECTIONS = 64
READ_TIMEOUT = 10.0  # seconds to send the request head, and as many for its body
HANDLE_TIMEOUT = 120.0  # seconds the handler may take before the hub is told to try again later


class CallbackServerError(MonitorError, OSError):
    """The WebSub callback server could not listen on its address."""


@dataclass(frozen=True)
class Request:
    """One request as read: header names lower-case (the first of a repeated header), the query's first values."""

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


Handler = Callable[[Request], Awaitable[Response]]
# Called once a request's head is read, with its method and path: a Response it returns is the answer, and the
# body is never read (a POST to no subscription costs the server nothing).
Admit = Callable[[str, str], Response | None]


class CallbackServer(ServedListener):
    """Reads one request per connection, within bounds, and answers with what ``handler`` returns.

    ``max_body`` says, when a request arrives, how many body bytes it may have
    (a callable, so that a reload's ``poll.max_bytes`` applies at once);
    ``admit`` may answer a request from its head alone.
    """

    def __init__(
        self,
        handler: Handler,
        host: str,
        port: int,
        *,
        max_body: Callable[[], int],
        admit: Admit | None = None,
        allow_remote: bool = False,
        read_timeout: float = READ_TIMEOUT,
        handle_timeout: float = HANDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
    ):
        if not allow_remote and not is_loopback(host):
            raise ConfigError(
                [
                    f"websub: refusing to listen on {host!r}: the callback server listens on a loopback address "
                    "behind a reverse proxy unless websub.allow_remote is true"
                ]
            )
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.max_body = max_body
        self.admit = admit
        self.read_timeout = read_timeout
        self.handle_timeout = handle_timeout
        self.max_connections = max_connections

    async def start(self) -> None:
        from monitor.web.listeners import callback_app

        app = callback_app(
            self.handler,
            max_body=self.max_body,
            admit=self.admit,
            read_timeout=self.read_timeout,
            handle_timeout=self.handle_timeout,
            logger=log,
        )
        await self._serve(
            app,
            logger=log,
            events="websub",
            error=CallbackServerError,
            name="websub",
            advice="choose another websub.listen or stop what is using it",
            max_connections=self.max_connections,
            head_timeout=self.read_timeout,
        )
