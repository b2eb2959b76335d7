"""A real WebSub hub on 127.0.0.1, small but speaking the W3C protocol, for tests and benchmarks.

    with WebSubHub(proxy={"https://news.example.org/websub": "http://127.0.0.1:8751/websub"}) as hub:
        feed advertises hub.url                 # <atom:link rel="hub"> or a Link header
        ...                                     # the subscriber POSTs hub.mode=subscribe to hub.url
        [sub] = hub.wait_for_subscribers(topic) # the hub verified its intent (GET with a challenge)
        hub.publish(topic, body)                # POST to every subscriber, signed with its secret

Subscription requests are answered 202 and verified from a thread of their
own, as hubs do (WebSub 5.3): a GET to the callback with hub.mode, hub.topic,
hub.challenge and hub.lease_seconds; the subscription counts only if the
callback answers 2xx with the challenge. ``proxy`` maps the public callback
URL prefix a subscriber gives to where it really listens, as the reverse proxy
in front of a subscriber would. ``publish`` can sign with another method,
with a wrong secret, or not at all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlencode

import httpx

__all__ = ["Delivery", "HubSubscription", "SubscriptionRequest", "WebSubHub"]


@dataclass(frozen=True)
class SubscriptionRequest:
    """One (un)subscription request the hub received, and what came of it."""

    form: Mapping[str, str]
    at: float = field(default_factory=time.monotonic)

    @property
    def mode(self) -> str:
        return self.form.get("hub.mode", "")

    @property
    def callback(self) -> str:
        return self.form.get("hub.callback", "")


@dataclass
class HubSubscription:
    callback: str
    topic: str
    secret: str | None
    lease_seconds: int
    verified_at: float


@dataclass(frozen=True)
class Verification:
    callback: str
    mode: str
    status: int
    echoed: bool  # the callback answered 2xx with the challenge


@dataclass(frozen=True)
class Delivery:
    callback: str
    status: int
    published_at: float  # wall clock, when the POST to the callback started


class WebSubHub:
    """Threaded hub on an ephemeral port of 127.0.0.1. ``lease_seconds`` (if set) is the lease it grants."""

    def __init__(self, *, proxy: Mapping[str, str] | None = None, lease_seconds: int | None = None) -> None:
        self.proxy = dict(proxy or {})
        self.lease_seconds = lease_seconds
        self._lock = threading.RLock()  # held by wait_for while its condition looks at the subscriptions
        self._changed = threading.Condition(self._lock)
        self.requests: list[SubscriptionRequest] = []
        self.verifications: list[Verification] = []
        self._subscriptions: dict[tuple[str, str], HubSubscription] = {}  # (topic, callback)
        self._server: _HubServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        server = _HubServer(("127.0.0.1", 0), _HubHandler)
        server.hub = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="websub-hub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "hub not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    # --- what tests look at ------------------------------------------------------------

    def subscribers(self, topic: str) -> list[HubSubscription]:
        with self._lock:
            return [sub for (t, _), sub in self._subscriptions.items() if t == topic]

    def wait_for(self, condition: Any, what: str, timeout: float = 60) -> Any:
        """Wait until ``condition()`` (called under the hub's lock) is truthy; return its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (value := condition()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"hub: timed out after {timeout}s waiting for {what}; requests {self.requests}, "
                        f"verifications {self.verifications}"
                    )
                self._changed.wait(min(remaining, 0.5))
            return value

    def wait_for_subscribers(self, topic: str, count: int = 1, timeout: float = 60) -> list[HubSubscription]:
        def ready() -> list[HubSubscription] | None:
            subs = [sub for (t, _), sub in self._subscriptions.items() if t == topic]
            return subs if len(subs) >= count else None

        return self.wait_for(ready, f"{count} verified subscriber(s) of {topic}", timeout)

    def local(self, callback: str) -> str:
        """Where a callback really is: through the proxy map, as the subscriber's reverse proxy would pass it."""
        for public, local in self.proxy.items():
            if callback.startswith(public):
                return local + callback[len(public) :]
        return callback

    # --- publishing --------------------------------------------------------------------

    def publish(
        self,
        topic: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        method: str = "sha256",
        secret: str | None = None,
        signed: bool = True,
    ) -> list[Delivery]:
        """POST ``body`` to every verified subscriber of ``topic`` (WebSub 7), signed per WebSub 8.

        ``secret`` replaces each subscriber's own (a forgery); ``signed=False`` sends no signature.
        """
        deliveries = []
        for sub in self.subscribers(topic):
            headers = {
                "Content-Type": content_type,
                "Link": f'<{self.url}>; rel="hub", <{topic}>; rel="self"',
            }
            key = secret if secret is not None else sub.secret
            if signed and key is not None:
                digest = hmac.new(key.encode(), body, getattr(hashlib, method)).hexdigest()
                headers["X-Hub-Signature"] = f"{method}={digest}"
            started = time.time()
            response = httpx.post(self.local(sub.callback), content=body, headers=headers, timeout=60)
            deliveries.append(Delivery(sub.callback, response.status_code, started))
            if response.status_code == 410:
                with self._changed:
                    self._subscriptions.pop((topic, sub.callback), None)
                    self._changed.notify_all()
        return deliveries

    # --- the protocol ------------------------------------------------------------------

    def _request(self, form: dict[str, str]) -> tuple[int, bytes]:
        mode = form.get("hub.mode")
        if mode not in ("subscribe", "unsubscribe") or not form.get("hub.topic") or not form.get("hub.callback"):
            return 400, b"hub.mode, hub.topic and hub.callback are required\n"
        secret = form.get("hub.secret")
        if secret is not None and len(secret.encode()) >= 200:
            return 400, b"hub.secret must be shorter than 200 bytes\n"
        with self._changed:
            self.requests.append(SubscriptionRequest(dict(form)))
            self._changed.notify_all()
        threading.Thread(target=self._verify, args=(dict(form),), name="websub-hub-verify", daemon=True).start()
        return 202, b""

    def _verify(self, form: dict[str, str]) -> None:
        mode, topic, callback = form["hub.mode"], form["hub.topic"], form["hub.callback"]
        asked = int(form.get("hub.lease_seconds") or 864000)
        lease = self.lease_seconds or asked
        challenge = secrets.token_urlsafe(24)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge}
        if mode == "subscribe":
            query["hub.lease_seconds"] = str(lease)
        separator = "&" if "?" in callback else "?"
        try:
            response = httpx.get(self.local(callback) + separator + urlencode(query), timeout=30)
            status, echoed = response.status_code, 200 <= response.status_code < 300 and response.text == challenge
        except httpx.HTTPError:
            status, echoed = 0, False
        with self._changed:
            self.verifications.append(Verification(callback, mode, status, echoed))
            if echoed and mode == "subscribe":
                self._subscriptions[(topic, callback)] = HubSubscription(
                    callback, topic, form.get("hub.secret"), lease, time.monotonic()
                )
            elif echoed:
                self._subscriptions.pop((topic, callback), None)
            self._changed.notify_all()


class _HubServer(ThreadingHTTPServer):
    daemon_threads = True
    hub: WebSubHub


class _HubHandler(BaseHTTPRequestHandler):
    server: _HubServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        form = {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}
        status, answer = self.server.hub._request(form)
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass
