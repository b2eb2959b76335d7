"""The WebSub callback endpoint: a small HTTP/1.1 server on the daemon's event loop.

    hub ── https://<websub.callback>/<token> ── reverse proxy (TLS) ── websub.listen ── CallbackServer
        ── read one bounded Request ── handler (monitor.subscriber.Subscriber.handle) ── Response, close

Hubs reach it through the public ``websub.callback`` URL; a reverse proxy
that terminates TLS passes their requests on to ``websub.listen``. Anyone can
send it anything, so everything it reads is bounded: one request per
connection; the request line and each header by size, the headers by count,
the query by its number of fields; the body by a byte cap (``poll.max_bytes``)
before a byte of it is read; the whole read by a deadline, the handler by
another; the connections open at once by a number. Nothing a client sends can
raise out of the server. Like the health endpoint it listens on loopback
unless told otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from monitor.errors import ConfigError, MonitorError
from monitor.health import is_loopback

log = logging.getLogger("monitor.callback")

MAX_LINE_BYTES = 8192  # the request line, each header line, each chunk-size line
MAX_HEADER_LINES = 100
MAX_QUERY_FIELDS = 32
MAX_CONNECTIONS = 64
READ_TIMEOUT = 10.0  # seconds to send the whole request
HANDLE_TIMEOUT = 120.0  # seconds the handler may take before the hub is told to try again later
WRITE_TIMEOUT = 10.0


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


@dataclass(frozen=True)
class Response:
    status: HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()

    def encode(self) -> bytes:
        lines = [
            f"HTTP/1.1 {self.status.value} {self.status.phrase}",
            f"Content-Type: {self.content_type}",
            f"Content-Length: {len(self.body)}",
            "Cache-Control: no-store",
            "Connection: close",
            *(f"{name}: {value}" for name, value in self.headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def text(status: HTTPStatus, message: str = "") -> Response:
    return Response(status, (message or status.phrase).encode() + b"\n")


Handler = Callable[[Request], Awaitable[Response]]
# Called once a request's head is read, with its method and path: a Response it returns is the answer, and the
# body is never read (a POST to no subscription costs the server nothing).
Admit = Callable[[str, str], Response | None]


class _Answered(Exception):
    """A request answered before its body was read."""

    def __init__(self, response: Response):
        self.response = response
        super().__init__(response.status.phrase)


class _Refused(Exception):
    """A request refused before the handler sees it."""

    def __init__(self, status: HTTPStatus, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(reason)


class CallbackServer:
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
                self._serve, self.host, self.requested_port, limit=MAX_LINE_BYTES, reuse_address=True
            )
        except OSError as exc:
            raise CallbackServerError(
                exc.errno,
                f"websub: cannot listen on {self.host}:{self.requested_port}: {exc.strerror or exc}; "
                "choose another websub.listen or stop what is using it",
            ) from exc
        log.info("websub.listening", extra={"url": self.url})

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._connections):
            writer.transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= self.max_connections:
            writer.transport.abort()  # no time and no memory for one more
            return
        self._connections.add(writer)
        try:
            response = await self._respond(reader, writer)
            if response is not None:
                writer.write(response.encode())
                async with asyncio.timeout(WRITE_TIMEOUT):
                    await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            writer.transport.abort()  # a slow or vanished client gets no more of our time
        except Exception:
            log.exception("websub.server_failed")
            writer.transport.abort()
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Response | None:
        try:
            async with asyncio.timeout(self.read_timeout):
                request = await read_request(reader, writer, self.max_body(), self.admit)
        except _Answered as exc:
            return exc.response
        except _Refused as exc:
            log.info("websub.bad_request", extra={"status": exc.status.value, "reason": exc.reason})
            return text(exc.status, exc.reason)
        try:
            async with asyncio.timeout(self.handle_timeout):
                return await self.handler(request)
        except TimeoutError:
            log.warning("websub.handler_timeout", extra={"path": request.path[:200], "seconds": self.handle_timeout})
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "try again later")
        except Exception:
            log.exception("websub.handler_failed")
            return text(HTTPStatus.INTERNAL_SERVER_ERROR)


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int, admit: Admit | None = None
) -> Request:
    """One request, or _Refused with the status to answer (_Answered: what ``admit`` said).

    GET and POST only; bodies by length or chunked.
    """
    request_line, headers = await _read_head(reader)
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _Refused(HTTPStatus.BAD_REQUEST, "malformed request line")
    method, target, _ = parts
    split = urlsplit(target)
    if not split.path.startswith("/"):
        raise _Refused(HTTPStatus.BAD_REQUEST, "malformed request target")
    if method not in ("GET", "POST"):
        raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{method[:20]} is not allowed here")
    try:
        parsed = parse_qs(split.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise _Refused(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
    query = {name: values[0] for name, values in parsed.items()}
    if admit is not None and (early := admit(method, split.path)) is not None:
        raise _Answered(early)
    body = b""
    if method == "POST":
        body = await _read_body(reader, writer, headers, max_body)
    return Request(method, split.path, query, headers, body)


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    lines: list[str] = []
    while True:
        try:
            raw = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request line or header too long") from None
        line = raw.rstrip(b"\r\n").decode("latin-1")
        if not line:
            if lines:
                break
            continue  # RFC 9112 2.2: empty lines before the request line are ignored
        lines.append(line)
        if len(lines) > MAX_HEADER_LINES:
            raise _Refused(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header lines")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise _Refused(HTTPStatus.BAD_REQUEST, "malformed header line")
        key = name.lower()
        if key in ("content-length", "transfer-encoding") and key in headers:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"repeated {name} header")
        headers.setdefault(key, value.strip())
    return lines[0], headers


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: Mapping[str, str], max_body: int
) -> bytes:
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if encoding is not None and length is not None:
        raise _Refused(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")  # RFC 9112 6.3
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "compressed bodies are not accepted")
    if encoding is not None:
        if encoding.lower() != "chunked":
            raise _Refused(HTTPStatus.NOT_IMPLEMENTED, "only chunked transfer coding is understood")
        _continue(writer, headers)
        return await _read_chunked(reader, max_body)
    if length is None:
        raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a body needs a Content-Length")
    if not (length.isascii() and length.isdigit()) or len(length) > 15:
        raise _Refused(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    if int(length) > max_body:
        raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
    _continue(writer, headers)
    return await reader.readexactly(int(length))


def _continue(writer: asyncio.StreamWriter, headers: Mapping[str, str]) -> None:
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "chunk size line too long") from None
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise _Refused(HTTPStatus.BAD_REQUEST, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > max_body:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise _Refused(HTTPStatus.BAD_REQUEST, "malformed chunk")
    for _ in range(MAX_HEADER_LINES):  # trailers, ignored
        try:
            trailer = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "trailer line too long") from None
        if not trailer.strip():
            return bytes(body)
    raise _Refused(HTTPStatus.BAD_REQUEST, "too many trailer lines")
