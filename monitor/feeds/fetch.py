"""HTTP retrieval of feeds: conditional GET, limits, timeouts, redirects, Retry-After.

This is the only module that opens sockets to feeds. It returns bytes and the
response metadata the scheduler needs; it never looks inside the body.

Which addresses a retrieval may reach is checked when it connects
(:mod:`monitor.feeds.addresses`): the client :func:`new_client` builds connects
through its guarded transport, and each request carries the
:class:`~monitor.feeds.addresses.PrivateAccess` it was given.

Every failure raises :class:`FetchError` (a :class:`~monitor.errors.RetrieveError`)
whose message names the URL and says what went wrong, and whose ``status`` and
``retry_after`` attributes feed the scheduler's backoff.
"""

from __future__ import annotations

import asyncio
import http
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin

import httpx

from monitor import USER_AGENT, http_headers
from monitor.errors import FeedUrlError, RetrieveError
from monitor.feeds.addresses import PUBLIC_ONLY, AddressRefused, GuardedTransport, PrivateAccess
from monitor.feeds.urls import check_feed_url, shown_url
from monitor.redact import redact_text, url_secrets

__all__ = [
    "FetchError",
    "Fetched",
    "HTTPStatusError",
    "fetch",
    "new_client",
    "post_form",
]

MAX_REDIRECTS = 5
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# Feed types first; generic XML/JSON next; anything else last so that a server
# with a single representation still answers instead of sending 406.
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.8, */*;q=0.5"
)
# Only what _Decoder can inflate with a bounded output size (no br/zstd).
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECT_STATUSES = (301, 302, 303, 307, 308)
_STATUS_HINTS = {
    401: "the feed needs credentials",
    403: "the server refuses access",
    404: "check the feed URL",
    410: "the feed was removed; delete it from the config",
    429: "the server rate-limits us",
}


class FetchError(RetrieveError):
    """A retrieval failure with what the scheduler needs to decide the next try.

    ``status`` is the HTTP status when the server answered, else None.
    ``retry_after`` is the server's Retry-After in seconds (never negative), or None.
    """

    def __init__(
        self,
        url: str,
        reason: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        # The message is stored and shown (status, logs): credentials in the URL never are.
        super().__init__(redact_text(f"{url}: {reason}", url_secrets(url)))
        self.url = url
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class HTTPStatusError(FetchError):
    """The server answered with an error status, 4xx or 5xx (``status`` is always set)."""

    status: int


@dataclass(frozen=True)
class Fetched:
    """What one successful retrieval produced."""

    url: str
    content: bytes | None
    etag: str | None
    last_modified: str | None
    content_type: str | None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        """True when the server answered 304: the caller's copy is current."""
        return self.content is None

    def links(self, rel: str) -> list[str]:
        """The targets of the response's Link header with relation ``rel`` (e.g. a WebSub "hub"), absolute."""
        return [
            urljoin(self.url, target)
            for target, rels in http_headers.links(self.headers.get("link"))
            if target and rel in rels
        ]


def new_client(*, timeout: float = 30.0, max_connections: int = 32) -> httpx.AsyncClient:
    """The one HTTP client the daemon shares across feeds (pooled connections).

    ``timeout`` bounds connecting, each read and write, waiting for a pooled
    connection, and (in :func:`fetch`) the whole retrieval including redirects.
    Each request reaches public addresses only unless :func:`fetch` is given a
    :class:`PrivateAccess` that allows its host. Proxy settings of the
    environment are not used: a proxy would hide where a feed really leads.
    """
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        transport=GuardedTransport(limits),
        # Redirects are followed by fetch() itself, to vet each hop's URL and address.
        follow_redirects=False,
        headers={
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        },
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | None = None,
    private: PrivateAccess = PUBLIC_ONLY,
) -> Fetched:
    """GET ``url``, conditionally when ``etag``/``last_modified`` are given.

    ``timeout`` is an overall deadline for the whole retrieval; it defaults to
    the client's read timeout. It exists because per-read timeouts alone never
    fire on a server that trickles one byte at a time. ``private`` says which
    hosts may be reached at a non-public address (see :func:`monitor.feeds.addresses.private_access`).
    """
    _check_url(url, url)
    deadline = timeout if timeout is not None else (client.timeout.read or 30.0)
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        async with asyncio.timeout(deadline):
            fetched = await _follow(client, url, headers, max_bytes, private)
    except TimeoutError:
        raise FetchError(url, f"timed out after {_seconds(deadline)}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, _describe_transport_error(exc, client.timeout)) from exc
    except httpx.InvalidURL as exc:  # httpx reads a redirect's Location (data:, "http:x") before _follow sees it
        raise FetchError(url, f"redirected to an invalid URL ({exc})") from None
    if fetched.not_modified:
        # A 304 may omit the validators; the ones we sent are still current.
        fetched = _with_validators(fetched, etag, last_modified)
    return fetched


async def post_form(
    client: httpx.AsyncClient,
    url: str,
    form: Mapping[str, str],
    *,
    private: PrivateAccess = PUBLIC_ONLY,
    timeout: float | None = None,
) -> int:
    """POST ``form`` (urlencoded) to ``url`` and return the 2xx status: a WebSub hub's subscription request.

    The hub is named by a feed, so the request goes out as a feed's would:
    the same client and URL rules, ``private`` for the addresses it may
    reach, one deadline, no redirect followed, no body read. Anything but
    a 2xx raises :class:`FetchError`.
    """
    _check_url(url, url)
    deadline = timeout if timeout is not None else (client.timeout.read or 30.0)
    try:
        async with asyncio.timeout(deadline):
            extensions = private.request_extensions(url)
            async with client.stream("POST", url, data=dict(form), extensions=extensions) as response:
                if response.status_code >= 400:
                    raise _status_error(url, response)
                if not 200 <= response.status_code < 300:
                    raise FetchError(url, f"unexpected HTTP {response.status_code} {_phrase(response)}".rstrip())
                return response.status_code
    except AddressRefused as exc:
        raise FetchError(url, str(exc)) from None
    except TimeoutError:
        raise FetchError(url, f"timed out after {_seconds(deadline)}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, _describe_transport_error(exc, client.timeout)) from exc


async def _follow(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], max_bytes: int, private: PrivateAccess
) -> Fetched:
    """Request ``url`` and follow up to MAX_REDIRECTS redirects."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        extensions = private.request_extensions(current)
        try:
            async with client.stream("GET", current, headers=headers, extensions=extensions) as response:
                if response.status_code in _REDIRECT_STATUSES:
                    current = _redirect_target(url, response)
                    continue
                return await _read_response(url, response, max_bytes)
        except AddressRefused as exc:
            where = "" if current == url else f"redirected to {shown_url(current)}: "
            raise FetchError(url, f"{where}{exc}") from None
    raise FetchError(url, f"too many redirects (more than {MAX_REDIRECTS})")


def _redirect_target(url: str, response: httpx.Response) -> str:
    location = response.headers.get("location")
    if not location:
        raise FetchError(
            url,
            f"HTTP {response.status_code} redirect without a Location header",
            status=response.status_code,
        )
    try:
        target = str(response.url.join(location))
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"redirected to an invalid URL {location!r}: {exc}") from None
    _check_url(url, target, shown=location)
    return target


async def _read_response(url: str, response: httpx.Response, max_bytes: int) -> Fetched:
    status = response.status_code
    if status == 304:
        return _fetched(response, None)
    if status >= 400:
        raise _status_error(url, response)
    if not 200 <= status < 300:
        raise FetchError(url, f"unexpected HTTP {status} {_phrase(response)}", status=status)
    _check_declared_length(url, response, max_bytes)
    content = await _read_capped(url, response, max_bytes)
    return _fetched(response, content)


def _fetched(response: httpx.Response, content: bytes | None) -> Fetched:
    headers = response.headers
    return Fetched(
        url=str(response.url),
        content=content,
        etag=headers.get("etag"),
        last_modified=headers.get("last-modified"),
        content_type=headers.get("content-type"),
        # httpx joins repeated headers with ", " and lower-cases the keys.
        headers={key.lower(): value for key, value in headers.items()},
    )


def _with_validators(fetched: Fetched, etag: str | None, last_modified: str | None) -> Fetched:
    return Fetched(
        url=fetched.url,
        content=None,
        etag=fetched.etag or etag,
        last_modified=fetched.last_modified or last_modified,
        content_type=fetched.content_type,
        headers=fetched.headers,
    )


# --- limits -------------------------------------------------------------------


def _check_declared_length(url: str, response: httpx.Response, max_bytes: int) -> None:
    """Refuse before reading when Content-Length already says the body is too big."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            url,
            f"response larger than {_size(max_bytes)} (Content-Length: {_size(int(declared))})",
        )


async def _read_capped(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    """Read the decoded body, aborting as soon as it exceeds ``max_bytes``."""
    decoder = _Decoder.for_encoding(url, response.headers.get("content-encoding", ""))
    body = bytearray()
    async for chunk in _decoded(decoder, response.aiter_raw(), max_bytes + 1):
        body += chunk
        if len(body) > max_bytes:
            raise FetchError(url, f"response larger than {_size(max_bytes)}")
    return bytes(body)


async def _decoded(decoder: _Decoder, raw: AsyncIterator[bytes], max_length: int) -> AsyncIterator[bytes]:
    """Decoded pieces of ``raw``, each step producing at most ``max_length`` bytes."""
    async for chunk in raw:
        for piece in decoder.decode(chunk, max_length):
            yield piece
    yield decoder.flush()


class _Decoder:
    """Content-Encoding decoder whose output per step is bounded.

    httpx inflates each network chunk in one go, so a 64 KiB chunk of a gzip
    bomb becomes ~64 MiB in memory before anyone can count it. Inflating with
    ``max_length`` lets the byte cap apply to the decoded body as it grows.
    """

    def __init__(self, url: str, encoding: str) -> None:
        self._url = url
        self._encoding = encoding
        self._inflater: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        # "deflate" waits for the first bytes to tell its wrapping (see decode).

    @classmethod
    def for_encoding(cls, url: str, header: str) -> _Decoder:
        encoding = header.strip().lower()
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(url, f"unsupported Content-Encoding {header!r}")
        return cls(url, encoding)

    def decode(self, chunk: bytes, max_length: int) -> list[bytes]:
        """Inflate ``chunk``; stops once ``max_length`` bytes came out."""
        if not chunk:
            return []
        if self._inflater is None:
            if self._encoding != "deflate":
                return [chunk]
            # "deflate" should be zlib-wrapped (RFC 9110), but some servers
            # send raw deflate; a valid zlib header tells them apart.
            wbits = zlib.MAX_WBITS if _is_zlib_header(chunk) else -zlib.MAX_WBITS
            self._inflater = zlib.decompressobj(wbits)
        out: list[bytes] = []
        produced = 0
        data = chunk
        try:
            while data and produced < max_length:
                piece = self._inflater.decompress(data, max_length - produced)
                out.append(piece)
                produced += len(piece)
                data = self._inflater.unconsumed_tail
        except zlib.error as exc:
            raise FetchError(self._url, f"corrupt {self._encoding} content: {exc}") from None
        return out

    def flush(self) -> bytes:
        """What the inflater still holds once the body has ended."""
        if self._inflater is None:
            return b""
        try:
            return self._inflater.flush()
        except zlib.error as exc:
            raise FetchError(self._url, f"corrupt {self._encoding} content: {exc}") from None


def _is_zlib_header(data: bytes) -> bool:
    """RFC 1950: method 8 (deflate), window <= 32 KiB, header check multiple of 31."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and ((data[0] << 8 | data[1]) % 31 == 0)


# --- errors -------------------------------------------------------------------


def _check_url(url: str, target: str, *, shown: str | None = None) -> None:
    """The rule every feed URL meets (feeds/urls.py): a feed or redirect never reaches file:, ftp: and the like.

    ``shown`` is how a redirect's target is named in the error (its Location).
    """
    try:
        check_feed_url(target)
    except FeedUrlError as exc:
        where = "" if shown is None else f"redirected to {shown_url(shown)}: "
        raise FetchError(url, f"{where}{exc.reason}") from None


def _status_error(url: str, response: httpx.Response) -> HTTPStatusError:
    status = response.status_code
    # An HTTP-date is measured against the response's own Date header when
    # there is one, so a skewed local clock does not distort it.
    served_at = http_headers.http_date(response.headers.get("date")) or datetime.now(UTC)
    wait = http_headers.retry_after(response.headers.get("retry-after"), served_at)
    reason = f"HTTP {status} {_phrase(response)}".rstrip()
    hint = _STATUS_HINTS.get(status)
    if hint:
        reason += f" ({hint})"
    if wait is not None:
        reason += f"; server asks to retry after {wait:g}s"
    return HTTPStatusError(url, reason, status=status, retry_after=wait)


def _phrase(response: httpx.Response) -> str:
    try:
        return response.reason_phrase or http.HTTPStatus(response.status_code).phrase
    except ValueError:
        return ""


def _describe_transport_error(exc: httpx.HTTPError, timeout: httpx.Timeout) -> str:
    """A user-facing reason for a network-level failure."""
    if isinstance(exc, httpx.PoolTimeout):
        return f"timed out after {_seconds(timeout.pool)} waiting for a free connection"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"connection timed out after {_seconds(timeout.connect)}"
    if isinstance(exc, httpx.WriteTimeout):
        return f"timed out after {_seconds(timeout.write)} sending the request"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {_seconds(timeout.read)}"
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return "connection refused"
    if isinstance(root, socket.gaierror):
        return f"cannot resolve the host name: {_strerror(root)}"
    if isinstance(root, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed: {root.verify_message}"
    if isinstance(root, ssl.SSLError):
        return f"TLS error: {root.reason or root}"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect: {_strerror(root)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"the server broke the HTTP exchange: {exc}"
    if isinstance(exc, httpx.NetworkError):
        return f"network error: {_strerror(root)}"
    return f"{type(exc).__name__}: {exc}"


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (nxt := exc.__cause__ or exc.__context__) is not None and id(nxt) not in seen:
        seen.add(id(nxt))
        exc = nxt
    return exc


def _strerror(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def _seconds(value: float | None) -> str:
    return "the timeout" if value is None else f"{value:g}s"


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"
