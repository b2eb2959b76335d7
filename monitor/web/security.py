"""What keeps the dashboard safe: the token, CSRF tokens, the Host check, size limits, security headers.

- **Token.** With a token set (from the environment variable ``web.token_env``),
  every request needs it: ``Authorization: Bearer TOKEN`` or HTTP Basic with
  TOKEN as the password (any user name). Compared in constant time.
- **Host.** Without a token the dashboard listens on loopback only, and answers
  only requests addressed to a loopback name: a web page elsewhere that points
  its own host name at 127.0.0.1 (DNS rebinding) gets nothing.
- **CSRF.** Every form that changes something carries a token: an HMAC of the
  form's action under a secret made when the process starts. A POST without it,
  or with a wrong one, is refused with 403 and changes nothing.
- **Headers.** A Content-Security-Policy allowing only the dashboard's own files
  (no inline script, no framing), ``X-Content-Type-Options: nosniff``, no
  referrer, no caching.
- **Sizes.** Query strings, request bodies and the time to send a body are
  bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from monitor.listening import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_QUERY_STRING = 2048  # bytes of a URL's query string
MAX_BODY = 4096  # bytes of a form POST (a CSRF token and little else)
BODY_TIMEOUT = 10.0  # seconds a client may take to send a request body

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
_NO_STORE = (b"cache-control", b"no-store")


class Csrf:
    """CSRF tokens for forms: an HMAC of the form's action under a secret of this process."""

    def __init__(self, secret: bytes | None = None):
        self._secret = secret or secrets.token_bytes(32)

    def token(self, action: str) -> str:
        return hmac.new(self._secret, action.encode(), hashlib.sha256).hexdigest()

    def valid(self, action: str, token: str | None) -> bool:
        if not token or len(token) > 128:
            return False
        return hmac.compare_digest(self.token(action).encode(), token.encode("utf-8", "replace"))


def token_matches(authorization: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token`` (Bearer, or Basic with it as the password)."""
    if not authorization or len(authorization) > 1024:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        given = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        _, _, given = decoded.partition(":")
    else:
        return False
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


def host_is_loopback(host_header: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback (any port)."""
    if not host_header:
        return False
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8750
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.endswith(".localhost") or is_loopback(host)


class Guard:
    """ASGI middleware in front of the whole dashboard (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, token: str | None, loopback_only: bool):
        self.app = app
        self.token = token or None
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message, extra = refusal
            await _plain(send, status, message, extra)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                added = [pair for pair in (*SECURITY_HEADERS, _NO_STORE) if pair[0] not in names]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        if self.token is not None:
            if not token_matches(headers.get("authorization"), self.token):
                challenge = [(b"www-authenticate", b'Basic realm="news-monitor", charset="UTF-8"')]
                return 401, "this dashboard needs its token (HTTP Basic password or Bearer)", challenge
        elif self.loopback_only and not host_is_loopback(headers.get("host")):
            return 421, "this dashboard answers only requests addressed to localhost", []
        if len(scope.get("query_string", b"")) > MAX_QUERY_STRING:
            return 414, f"the query string is longer than {MAX_QUERY_STRING} bytes", []
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return 413, f"a request body here is at most {MAX_BODY} bytes", []
        return None


async def _plain(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = (message + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        _NO_STORE,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
