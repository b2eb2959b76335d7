"""What the daemon's small HTTP/1.1 servers share: listen, bound the connections, read a head, answer, close.

    BoundedHTTPServer.start ── listen on host:port (loopback unless allowed) ── per connection:
        at most max_connections open ── subclass.serve_connection (reads with read_head, writes a Response)
        ── a timeout, a vanished client or a bug aborts that connection only ── stop closes the rest

Two servers stand on it: ``monitor.callback.CallbackServer`` (WebSub pushes)
and ``monitor.health.HealthServer`` (``/healthz``, ``/metrics``). Each says
who it is in a few class attributes (the words of its errors, its logger
and events) and what it does with one connection; the rest is here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar

from monitor.errors import ConfigError

MAX_LINE_BYTES = 8192  # the request line, each header line (and any other line read from the stream)
MAX_HEADER_LINES = 100


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


class RequestRefused(Exception):
    """A request answered with ``status`` and ``reason`` (as text) instead of being served."""

    def __init__(self, status: HTTPStatus, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self, *, head: bool = False) -> bytes:
        """The whole response; ``head``: without the body (the answer to HEAD)."""
        lines = [
            f"HTTP/1.1 {self.status.value} {self.status.phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else self.body)


def text(status: HTTPStatus, message: str = "", *headers: tuple[str, str]) -> Response:
    """A plain-text response: ``message`` (the status phrase if none) and a newline."""
    return Response(status, (message or status.phrase).encode() + b"\n", headers=headers)


class BoundedHTTPServer:
    """One request per connection, on the running event loop; a subclass answers it in ``serve_connection``.

    A subclass sets the class attributes below. Nothing a client sends can
    raise out of the server: a timeout or a lost connection aborts it, any
    other exception is logged as ``failure_event`` and aborts it too.
    """

    label: ClassVar[str]  # starts its error messages: "websub: cannot listen on ..."
    address_setting: ClassVar[str]  # "choose another <address_setting>" when the address is taken
    loopback_reason: ClassVar[str]  # why it refuses a non-loopback address unless allow_remote
    listen_error: ClassVar[type[OSError]]  # raised, with the errno, when it cannot listen
    logger: ClassVar[logging.Logger]
    listening_event: ClassVar[str]
    failure_event: ClassVar[str]

    def __init__(self, host: str, port: int, *, allow_remote: bool = False, max_connections: int | None = None):
        if not allow_remote and not is_loopback(host):
            raise ConfigError([f"{self.label}: refusing to listen on {host!r}: {self.loopback_reason}"])
        self.host = host
        self.requested_port = port
        self.max_connections = max_connections  # None: no limit
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose when asked for port 0)."""
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.requested_port, limit=MAX_LINE_BYTES, reuse_address=True
            )
        except OSError as exc:
            raise self.listen_error(
                exc.errno,
                f"{self.label}: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}; "
                f"choose another {self.address_setting} or stop what is using it",
            ) from exc
        self.logger.info(self.listening_event, extra={"url": self.url})

    async def stop(self) -> None:
        """Stop listening and abort the connections still open."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request and write its answer, each within the subclass's own time limits."""
        raise NotImplementedError

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.max_connections is not None and len(self._connections) >= self.max_connections:
            writer.transport.abort()  # no time and no memory for one more
            return
        self._connections.add(writer)
        try:
            await self.serve_connection(reader, writer)
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()  # a slow or vanished client gets no more of our time
        except Exception:
            self.logger.exception(self.failure_event)
            writer.transport.abort()
        finally:
            self._connections.discard(writer)
            writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """The request line and the header lines (unparsed) of one request, or RequestRefused (431) past the bounds.

    Each line is bounded by the stream's limit (``MAX_LINE_BYTES`` on a
    BoundedHTTPServer), all of them together by ``MAX_HEADER_LINES``.
    """
    lines: list[str] = []
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise RequestRefused(
                HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request line or header too long"
            ) from None
        line = raw.rstrip(b"\r\n").decode("latin-1")
        if not line:
            if lines:
                break
            continue  # RFC 9112 2.2: empty lines before the request line are ignored
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise RequestRefused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header lines")
    return lines[0], lines[1:]


def split_request_line(request_line: str) -> tuple[str, str]:
    """The method and the target of an HTTP/1.x request line, or RequestRefused (400)."""
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, _ = parts
    return method, target
