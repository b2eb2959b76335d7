"""A real HTTP server on 127.0.0.1 that serves whatever a test tells it to.

Usage::

    with FeedServer() as server:
        server.route("/rss.xml", body, etag='"v1"')
        url = server.url("/rss.xml")
        ...                                  # poll it
        server.route("/rss.xml", body2, etag='"v2"')   # the feed changed
        assert server.requests_for("/rss.xml")[-1].headers["if-none-match"] == '"v1"'

Each route is a canned response: body, status, headers, optional delay,
compression, validators for conditional GET (304), redirects, a "trickle"
that sends bytes slowly forever, or a gate that holds the answer until the
test opens it. Routes can be replaced at any time from the
test thread; requests are served concurrently (one thread each) and recorded.
Unknown paths answer 404. The query string is ignored for routing but kept in
the recorded path.
"""

from __future__ import annotations

import email.utils
import gzip as gzip_module
import sys
import threading
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urljoin, urlsplit

__all__ = ["FeedServer", "Recorded", "Route"]


@dataclass(frozen=True)
class Route:
    """A canned response. See :meth:`FeedServer.route` for the fields."""

    body: bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gzip: bool = False
    deflate: bool = False
    chunked: bool = False
    trickle: float | None = None
    gate: threading.Event | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]


class FeedServer:
    """Threaded HTTP/1.1 server on an ephemeral port of 127.0.0.1."""

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}
        self._requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._in_flight = 0
        self.max_in_flight = 0  # the most requests ever served at the same time
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------

    def start(self) -> FeedServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.feedserver = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"feedserver:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; trickling and delayed responses are cut short."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FeedServer is not started")
        return self._httpd.server_address[1]

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # --- routes ---------------------------------------------------------------

    def route(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
        gzip: bool = False,
        deflate: bool = False,
        chunked: bool = False,
        trickle: float | None = None,
        gate: threading.Event | None = None,
    ) -> Route:
        """Serve ``body`` at ``path`` (replacing any earlier route there).

        - ``headers`` are sent as given; ``content_type`` is a shortcut for
          Content-Type (None sends none).
        - ``etag`` / ``last_modified`` (an HTTP-date) are sent, and a request
          whose If-None-Match / If-Modified-Since matches gets 304. Setting
          ETag or Last-Modified through ``headers`` does the same.
        - ``delay`` seconds pass before the status line is sent.
        - ``gzip`` / ``deflate`` (zlib-wrapped) compress the body and set
          Content-Encoding, whatever the request's Accept-Encoding says. For
          anything else (raw deflate, a gzip bomb) pass compressed bytes and
          the Content-Encoding header yourself.
        - ``chunked`` sends the body with Transfer-Encoding: chunked, so the
          client cannot know its size in advance.
        - ``trickle`` sends the body one byte every ``trickle`` seconds,
          repeating it forever (chunked), until the client gives up or the
          server stops. Use it for overall-timeout and size-cap tests.
        - ``gate``: the request is recorded at once, but nothing is sent until
          the test calls ``gate.set()`` (or the server stops). Use it to keep a
          request in flight exactly as long as the test needs, instead of
          guessing a ``delay``.
        """
        merged = dict(headers or {})
        if content_type is not None and not _has(merged, "content-type"):
            merged["Content-Type"] = content_type
        if etag is not None:
            merged["ETag"] = etag
        if last_modified is not None:
            merged["Last-Modified"] = last_modified
        route = Route(
            body=body,
            status=status,
            headers=merged,
            delay=delay,
            gzip=gzip,
            deflate=deflate,
            chunked=chunked,
            trickle=trickle,
            gate=gate,
        )
        with self._lock:
            self._routes[path] = route
        return route

    def redirect(self, path: str, target: str, *, status: int = 302) -> Route:
        """Answer ``path`` with a redirect to ``target`` (a path or an absolute URL)."""
        location = target if "://" in target else urljoin(self.url("/"), target)
        return self.route(
            path, b"", status=status, headers={"Location": location}, content_type=None
        )

    def remove(self, path: str) -> None:
        with self._lock:
            self._routes.pop(path, None)

    def _lookup(self, path: str) -> Route | None:
        with self._lock:
            return self._routes.get(urlsplit(path).path)

    # --- recorded requests ----------------------------------------------------

    @property
    def requests(self) -> list[Recorded]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if urlsplit(r.path).path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: Recorded) -> None:
        with self._lock:
            self._requests.append(request)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Benchmarks open dozens of connections at once; the default backlog of 5
    # makes the kernel drop SYNs and adds whole seconds of retransmit delay.
    request_queue_size = 256
    feedserver: FeedServer

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up mid-response (timeouts, size caps) is expected.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed servers do
    server: _Server

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def log_message(self, format: str, *args: object) -> None:
        pass  # tests read server.requests instead of stderr noise

    def _serve(self, *, send_body: bool) -> None:
        owner = self.server.feedserver
        owner._enter()
        try:
            self._respond(owner, send_body=send_body)
        finally:
            owner._leave()

    def _respond(self, owner: FeedServer, *, send_body: bool) -> None:
        headers = {key.lower(): value for key, value in self.headers.items()}
        owner._record(Recorded(self.command, self.path, headers))
        route = owner._lookup(self.path)
        if route is None:
            self._send(404, {"Content-Type": "text/plain"}, b"no such route\n", send_body)
            return
        if route.gate is not None:
            while not route.gate.wait(0.05):
                if owner._stopping.is_set():
                    return
        if route.delay and owner._stopping.wait(route.delay):
            return
        if _not_modified(route, headers):
            validators = {
                k: v for k, v in route.headers.items() if k.lower() in ("etag", "last-modified")
            }
            self._send(304, validators, b"", send_body=False)
            return
        if route.trickle is not None:
            self._trickle(route, owner._stopping)
            return
        body, extra = _encode(route)
        if route.chunked:
            self._send_chunked(route.status, {**route.headers, **extra}, body, send_body)
        else:
            self._send(route.status, {**route.headers, **extra}, body, send_body)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes, send_body: bool) -> None:
        self._start(status, headers)
        if not _has(headers, "content-length"):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and body:
            self.wfile.write(body)

    def _send_chunked(
        self, status: int, headers: Mapping[str, str], body: bytes, send_body: bool
    ) -> None:
        self._start(status, headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if not send_body:
            return
        for start in range(0, len(body), 16 * 1024):
            self._write_chunk(body[start : start + 16 * 1024])
        self.wfile.write(b"0\r\n\r\n")

    def _trickle(self, route: Route, stopping: threading.Event) -> None:
        self._start(route.status, route.headers)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        body = route.body or b" "
        interval = route.trickle or 0.0
        self.close_connection = True
        try:
            index = 0
            while not stopping.is_set():
                self._write_chunk(body[index : index + 1])
                index = (index + 1) % len(body)
                if interval and stopping.wait(interval):
                    break
        except OSError:
            pass  # the client gave up, which is what the test wanted

    def _start(self, status: int, headers: Mapping[str, str]) -> None:
        """Status line and headers; a route's own Date or Server replaces ours."""
        self.send_response_only(status)
        if not _has(headers, "server"):
            self.send_header("Server", self.version_string())
        if not _has(headers, "date"):
            self.send_header("Date", self.date_time_string())
        for key, value in headers.items():
            self.send_header(key, value)

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()


def _encode(route: Route) -> tuple[bytes, dict[str, str]]:
    if route.gzip:
        return gzip_module.compress(route.body), {"Content-Encoding": "gzip"}
    if route.deflate:
        return zlib.compress(route.body), {"Content-Encoding": "deflate"}
    return route.body, {}


def _not_modified(route: Route, request: Mapping[str, str]) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if not 200 <= route.status < 300:
        return False
    etag = route.header("etag")
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        if etag is None:
            return False
        wanted = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in wanted or etag.removeprefix("W/") in wanted
    last_modified = route.header("last-modified")
    if_modified_since = request.get("if-modified-since")
    if last_modified is None or if_modified_since is None:
        return False
    try:
        changed = email.utils.parsedate_to_datetime(last_modified)
        since = email.utils.parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return changed <= since


def _has(headers: Mapping[str, str], name: str) -> bool:
    return any(key.lower() == name for key in headers)
