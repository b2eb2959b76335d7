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

from monitor.errors import MonitorError
from monitor.http_server import (
    MAX_HEADER_LINES,
    BoundedHTTPServer,
    RequestRefused,
    Response,
    read_head,
    split_request_line,
    text,
)

log = logging.getLogger("monitor.callback")

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


Handler = Callable[[Request], Awaitable[Response]]
# Called once a request's head is read, with its method and path: a Response it returns is the answer, and the
# body is never read (a POST to no subscription costs the server nothing).
Admit = Callable[[str, str], Response | None]


class _Answered(Exception):
    """A request answered before its body was read."""

    def __init__(self, response: Response):
        self.response = response
        super().__init__(response.status.phrase)


class CallbackServer(BoundedHTTPServer):
    """Reads one request per connection, within bounds, and answers with what ``handler`` returns.

    ``max_body`` says, when a request arrives, how many body bytes it may have
    (a callable, so that a reload's ``poll.max_bytes`` applies at once);
    ``admit`` may answer a request from its head alone.
    """

    label = "websub"
    address_setting = "websub.listen"
    loopback_reason = (
        "the callback server listens on a loopback address behind a reverse proxy unless websub.allow_remote is true"
    )
    listen_error = CallbackServerError
    logger = log
    listening_event = "websub.listening"
    failure_event = "websub.server_failed"

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
        super().__init__(host, port, allow_remote=allow_remote, max_connections=max_connections)
        self.handler = handler
        self.max_body = max_body
        self.admit = admit
        self.read_timeout = read_timeout
        self.handle_timeout = handle_timeout

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        response = await self._respond(reader, writer)
        if response is not None:
            writer.write(response.encode())
            async with asyncio.timeout(WRITE_TIMEOUT):
                await writer.drain()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Response | None:
        try:
            async with asyncio.timeout(self.read_timeout):
                request = await read_request(reader, writer, self.max_body(), self.admit)
        except _Answered as exc:
            return exc.response
        except RequestRefused as exc:
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
    """One request, or RequestRefused with the status to answer (_Answered: what ``admit`` said).

    GET and POST only; bodies by length or chunked.
    """
    request_line, header_lines = await read_head(reader)
    headers = _parse_headers(header_lines)
    method, target = split_request_line(request_line)
    split = urlsplit(target)
    if not split.path.startswith("/"):
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed request target")
    if method not in ("GET", "POST"):
        raise RequestRefused(HTTPStatus.METHOD_NOT_ALLOWED, f"{method[:20]} is not allowed here")
    try:
        parsed = parse_qs(split.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
    query = {name: values[0] for name, values in parsed.items()}
    if admit is not None and (early := admit(method, split.path)) is not None:
        raise _Answered(early)
    body = b""
    if method == "POST":
        body = await _read_body(reader, writer, headers, max_body)
    return Request(method, split.path, query, headers, body)


def _parse_headers(lines: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed header line")
        key = name.lower()
        if key in ("content-length", "transfer-encoding") and key in headers:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, f"repeated {name} header")
        headers.setdefault(key, value.strip())
    return headers


async def _read_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: Mapping[str, str], max_body: int
) -> bytes:
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if encoding is not None and length is not None:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")  # RFC 9112 6.3
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise RequestRefused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "compressed bodies are not accepted")
    if encoding is not None:
        if encoding.lower() != "chunked":
            raise RequestRefused(HTTPStatus.NOT_IMPLEMENTED, "only chunked transfer coding is understood")
        _continue(writer, headers)
        return await _read_chunked(reader, max_body)
    if length is None:
        raise RequestRefused(HTTPStatus.LENGTH_REQUIRED, "a body needs a Content-Length")
    if not (length.isascii() and length.isdigit()) or len(length) > 15:
        raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
    if int(length) > max_body:
        raise RequestRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
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
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "chunk size line too long") from None
        size_text = line.split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > max_body:
            raise RequestRefused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "malformed chunk")
    for _ in range(MAX_HEADER_LINES):  # trailers, ignored
        try:
            trailer = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise RequestRefused(HTTPStatus.BAD_REQUEST, "trailer line too long") from None
        if not trailer.strip():
            return bytes(body)
    raise RequestRefused(HTTPStatus.BAD_REQUEST, "too many trailer lines")
