"""Real local receivers for alert channels: an SMTP server and an HTTP webhook endpoint.

Both bind to 127.0.0.1 on a free port, run in background threads, and are
context managers, so unit tests and end-to-end tests (which run the real CLI in
a subprocess) can point apprise URLs at them:

    with SMTPReceiver() as smtp:
        url = smtp.apprise_url(to="desk@example.org")   # mailto://127.0.0.1:PORT?...
        ...
        [message] = smtp.wait_for(1)

    with WebhookReceiver() as hook:
        hook.fail_next(2, status=500, headers={"Retry-After": "1"})
        url = hook.json_url("/alerts")                   # json://127.0.0.1:PORT/alerts
        ...
        [request] = hook.wait_for(1)
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

DEFAULT_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Also what tests use for "connection refused": nobody is behind it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Collector:
    """A thread-safe list that lets a test wait until it holds n entries."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._changed = threading.Condition()

    def append(self, item: Any) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[Any]:
        with self._changed:
            return list(self._items)

    def wait_for(self, n: int, timeout: float, what: str) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._items) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {n} {what} within {timeout}s, got {len(self._items)}"
                    )
                self._changed.wait(remaining)
            return list(self._items)


# --------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    """One SMTP transaction: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    login: tuple[str, str] | None


class _SMTPHandler:
    def __init__(self, collector: _Collector) -> None:
        self._collector = collector

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        # The (user, password) _accept_any_login stored on the session, if any.
        login = session.auth_data if isinstance(session.auth_data, tuple) else None
        self._collector.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                login=login,
            )
        )
        return "250 Message accepted for delivery"


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    # Tests exercise URLs with and without credentials; any login is fine,
    # and keeping (user, password) lets a test assert what apprise sent.
    if isinstance(auth_data, LoginPassword):
        pair = (auth_data.login.decode(), auth_data.password.decode())
        return AuthResult(success=True, auth_data=pair)
    return AuthResult(success=True)


class SMTPReceiver:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives.

    Plain SMTP, no TLS; AUTH is offered without TLS and accepts any login so
    that apprise URLs with a user and password work as well as those without.
    """

    def __init__(self, port: int | None = None) -> None:
        self._collector = _Collector()
        self._handler = _SMTPHandler(self._collector)
        self.host = "127.0.0.1"
        self.port = port or 0
        self._controller: Controller | None = None

    def start(self) -> None:
        # aiosmtpd's Controller cannot report the port it bound with port=0,
        # so pick a free one; retry in the unlikely case another process wins it.
        last_error: Exception | None = None
        for _ in range(5):
            port = self.port or free_port()
            controller = Controller(
                self._handler,
                hostname=self.host,
                port=port,
                auth_require_tls=False,
                authenticator=_accept_any_login,
            )
            try:
                controller.start()
            except Exception as error:  # bind race: try another port
                last_error = error
                if self.port:
                    raise
                continue
            self._controller = controller
            self.port = port
            return
        raise RuntimeError(f"could not start SMTP receiver: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def received(self) -> list[ReceivedMail]:
        return self._collector.snapshot()

    @property
    def messages(self) -> list[EmailMessage]:
        return [mail.message for mail in self.received]

    def wait_for(self, n: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[EmailMessage]:
        """Block until at least n messages arrived; return all of them."""
        mails = self._collector.wait_for(n, timeout, "emails")
        return [mail.message for mail in mails]

    def apprise_url(
        self,
        to: str = "desk@example.org",
        sender: str = "monitor@example.org",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """The apprise mailto:// URL that delivers to this receiver over plain SMTP.

        ``mailto://`` (not ``mailtos://``) means secure mode "insecure": no TLS,
        no STARTTLS. Apprise only logs in when both user and password are given.
        """
        auth = ""
        if user and password:
            auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return (
            f"mailto://{auth}{self.host}:{self.port}"
            f"?from={quote(sender)}&to={quote(to)}"
        )


# ------------------------------------------------------------------------ webhook


@dataclass(frozen=True)
class ReceivedRequest:
    """One HTTP request the webhook receiver answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)
    received_at: float = field(default_factory=time.time)  # when it arrived (wall clock, for latency)

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None if it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Response:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Slack's webhook answers exactly "ok" and apprise's Slack plugin checks
    # for it; apprise's json:// only looks at the status.
    body: bytes = b"ok"
    # A receiver that trickles: one byte of its answer every ``trickle`` seconds, and
    # the answer never ends (until ``stop_trickling`` or the receiver stops). Each byte
    # arrives well within a client's read timeout, so only a limit on the whole send ends it.
    trickle: float | None = None


class _Script:
    """The responses to give, in order; the default once the queue is empty."""

    def __init__(self) -> None:
        self._queue: deque[Response] = deque()
        self._lock = threading.Lock()
        self.default = Response()

    def push(self, response: Response, times: int = 1) -> None:
        with self._lock:
            self._queue.extend([response] * times)

    def next(self) -> Response:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default


class _WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    collector: _Collector
    script: _Script
    trickles_end: threading.Event  # set: every trickling answer breaks off
    gate: threading.Event  # clear: answers are held (the request is recorded first)


class _WebhookHandler(BaseHTTPRequestHandler):
    server: _WebhookServer
    # HTTP/1.1 so keep-alive clients (requests' pools) behave as with a real server.
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = self.server.script.next()
        self.server.collector.append(
            ReceivedRequest(
                method=self.command,
                path=self.path,
                headers={k: v for k, v in self.headers.items()},
                body=body,
                status=response.status,
            )
        )
        if response.trickle is not None:
            self._trickle(response.trickle)
            return
        if self.server.gate.is_set():
            self.send_response(response.status)
        elif not self._hold(response.status):
            return
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def _hold(self, status: int) -> bool:
        """Begin the answer, then keep it going one byte a second until the gate opens (never idle
        long enough for a client's read timeout); False if the client gave up meanwhile."""
        try:
            self.wfile.write(f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\nX-Held: ".encode())
            self.wfile.flush()
            while not self.server.gate.wait(1.0):
                self.wfile.write(b"a")
                self.wfile.flush()
            self.wfile.write(b"\r\n")
        except OSError:
            self.close_connection = True
            return False
        self._headers_buffer: list[bytes] = []
        return True

    def _trickle(self, every: float) -> None:
        self.close_connection = True
        try:
            for byte in b"HTTP/1.1 200 OK\r\nX-Trickle: ":
                if self.server.trickles_end.wait(every):
                    return
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            while not self.server.trickles_end.wait(every):
                self.wfile.write(b"a")
                self.wfile.flush()
        except OSError:  # the client gave up and closed the connection
            pass

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle

    def log_message(self, format: str, *args: Any) -> None:
        # Keep test output clean; every request is recorded in `requests`.
        pass


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records requests and answers from a script.

    Answers 200 "ok" by default (what Slack's webhook says). ``fail_next``
    queues failures that are served before the default resumes.
    """

    def __init__(self) -> None:
        self._collector = _Collector()
        self._script = _Script()
        self._server: _WebhookServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        server = _WebhookServer(("127.0.0.1", 0), _WebhookHandler)
        server.collector = self._collector
        server.script = self._script
        server.trickles_end = threading.Event()
        server.gate = threading.Event()
        server.gate.set()
        self._server = server
        # A short poll interval keeps shutdown() (every test's teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webhook-receiver",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.trickles_end.set()
            self._server.gate.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "receiver not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:PORT (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def slack_webhook_url(self) -> str:
        """What to put in NotifySlack.webhook_url (or NEWS_MONITOR_TEST_SLACK_WEBHOOK_URL)."""
        return f"{self.url}/services"

    def json_url(self, path: str = "/") -> str:
        """An apprise json:// URL that posts to this receiver."""
        return f"json://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._collector.snapshot()

    def wait_for(self, n: int = 1, timeout: float = DEFAULT_TIMEOUT) -> list[ReceivedRequest]:
        """Block until at least n requests arrived; return all of them."""
        return self._collector.wait_for(n, timeout, "requests")

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        headers: dict[str, str] | None = None,
        body: bytes = b"error",
    ) -> None:
        """Answer the next n requests with ``status`` (then back to the default)."""
        self._script.push(Response(status, dict(headers or {}), body), times=n)

    def respond_next(
        self, status: int, headers: dict[str, str] | None = None, body: bytes = b"ok"
    ) -> None:
        """Queue one arbitrary response."""
        self._script.push(Response(status, dict(headers or {}), body))

    def set_default(
        self, status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"ok"
    ) -> None:
        """Change what every unscripted request gets."""
        self._script.default = Response(status, dict(headers or {}), body)

    def trickle(self, every: float = 2.0) -> None:
        """From now on answer every request one byte per ``every`` seconds, never finishing.

        ``recover()`` breaks off the answers trickling and answers normally again.
        """
        assert self._server is not None, "receiver not started"
        self._server.trickles_end.clear()
        self._script.default = Response(trickle=every)

    def recover(self) -> None:
        """Break off every trickling answer (the connection closes) and answer 200 "ok" from now on."""
        assert self._server is not None, "receiver not started"
        self._script.default = Response()
        self._server.trickles_end.set()

    def hold_answers(self) -> None:
        """Record requests as they come but finish no answer until ``answer()``.

        A held answer is begun and kept going a byte a second, so the sender waits
        rather than timing out.
        """
        assert self._server is not None, "receiver not started"
        self._server.gate.clear()

    def answer(self) -> None:
        """Answer the held requests, and every request from now on."""
        assert self._server is not None, "receiver not started"
        self._server.gate.set()
