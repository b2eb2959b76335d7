"""The ASGI apps of the daemon's other listeners: ``health:`` (``/healthz``, ``/metrics``) and the WebSub callback.

    uvicorn (web/server.py, a Listener: head deadline, head size, connections) ── health_app | callback_app
        ── head_refusal (request line, header lines) ── the answer (Cache-Control: no-store, Connection: close)

Both take one request per connection. The callback reads a POST's body as
the old rules of monitor.callback say: never past ``max_body`` bytes (413,
and a Content-Length above it is refused before a byte is read), within a
deadline (408), only ``identity`` content and the chunked transfer coding.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import ClientDisconnect
from starlette.requests import Request as StarletteRequest
from starlette.responses import Response as StarletteResponse
from starlette.types import Receive, Scope, Send

from monitor.listening import Response, text

if TYPE_CHECKING:
    from monitor.callback import Admit, Handler
    from monitor.health import HealthStatus, Metrics

MAX_LINE_BYTES = 8192  # the request line, each header line
MAX_HEADER_LINES = 100
MAX_QUERY_FIELDS = 32

App = Callable[[Scope, Receive, Send], Any]


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(reason)


async def send(answer: Response, scope: Scope, receive: Receive, asgi_send: Send) -> None:
    headers = {"Cache-Control": "no-store", "Connection": "close", "Content-Type": answer.content_type}
    headers.update(answer.headers)
    response = StarletteResponse(answer.body, status_code=answer.status, headers=headers)
    await response(scope, receive, asgi_send)


def target(scope: Scope) -> str:
    """The path as the client sent it (not percent-decoded), or ``""`` when the request line is not HTTP/1.x."""
    if scope.get("http_version") not in ("1.0", "1.1"):
        return ""
    return urlsplit(scope.get("raw_path", b"").decode("latin-1")).path


def head_refusal(scope: Scope) -> Response | None:
    """431 past the bounds of the request line and header lines, 400 for a request line that is not HTTP/1.x."""
    headers = scope["headers"]
    line = len(scope["method"]) + len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) + 11
    if line > MAX_LINE_BYTES or any(len(name) + len(value) + 2 > MAX_LINE_BYTES for name, value in headers):
        return text(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request line or header too long")
    if len(headers) > MAX_HEADER_LINES:
        return text(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "too many header lines")
    if not target(scope).startswith("/"):
        return text(HTTPStatus.BAD_REQUEST, "malformed request line")
    return None


# --- health: /healthz and /metrics -------------------------------------------------------------


def health_app(
    metrics: Metrics, health: Callable[[], HealthStatus], refresh: Callable[[], None] | None, logger: logging.Logger
) -> App:
    from monitor.health import healthz_response, metrics_response

    async def app(scope: Scope, receive: Receive, asgi_send: Send) -> None:
        answer = head_refusal(scope)
        if answer is not None:
            logger.debug("health.bad_request", extra={"reason": answer.body.decode().strip()})
        else:
            method, path = scope["method"], target(scope)
            if path not in ("/healthz", "/metrics"):
                answer = text(HTTPStatus.NOT_FOUND, "not found; this server answers /healthz and /metrics")
            elif method not in ("GET", "HEAD"):
                answer = text(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed here", ("Allow", "GET, HEAD"))
            elif path == "/healthz":
                answer = healthz_response(health)
            else:
                answer = metrics_response(metrics, refresh)
        await send(answer, scope, receive, asgi_send)

    return app


# --- the WebSub callback --------------------------------------------------------------------------


def callback_app(
    handler: Handler,
    *,
    max_body: Callable[[], int],
    admit: Admit | None,
    read_timeout: float,
    handle_timeout: float,
    logger: logging.Logger,
) -> App:
    from monitor.callback import Request

    async def respond(scope: Scope, receive: Receive) -> Response:
        refusal = head_refusal(scope)
        if refusal is not None:
            raise _Refused(HTTPStatus(refusal.status), refusal.body.decode().strip())
        method, path = scope["method"], target(scope)
        if method not in ("GET", "POST"):
            raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, f"{method[:20]} is not allowed here")
        try:
            parsed = parse_qs(
                scope.get("query_string", b"").decode("latin-1"),
                keep_blank_values=True,
                max_num_fields=MAX_QUERY_FIELDS,
            )
        except ValueError:
            raise _Refused(HTTPStatus.BAD_REQUEST, "too many query parameters") from None
        query = {name: values[0] for name, values in parsed.items()}
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1").strip())
        if admit is not None and (early := admit(method, path)) is not None:
            return early
        body = b""
        if method == "POST":
            body = await read_body(StarletteRequest(scope, receive), headers, max_body(), read_timeout)
        request = Request(method, path, query, headers, body)
        try:
            async with asyncio.timeout(handle_timeout):
                return await handler(request)
        except TimeoutError:
            logger.warning("websub.handler_timeout", extra={"path": path[:200], "seconds": handle_timeout})
            return text(HTTPStatus.SERVICE_UNAVAILABLE, "try again later")
        except Exception:
            logger.exception("websub.handler_failed")
            return text(HTTPStatus.INTERNAL_SERVER_ERROR)

    async def app(scope: Scope, receive: Receive, asgi_send: Send) -> None:
        try:
            answer = await respond(scope, receive)
        except ClientDisconnect:
            return  # gone before its body was sent: nobody to answer
        except _Refused as exc:
            logger.info("websub.bad_request", extra={"status": exc.status.value, "reason": exc.reason})
            answer = text(exc.status, exc.reason)
        except Exception:
            logger.exception("websub.server_failed")
            answer = text(HTTPStatus.INTERNAL_SERVER_ERROR)
        await send(answer, scope, receive, asgi_send)

    return app


async def read_body(request: StarletteRequest, headers: Mapping[str, str], max_body: int, read_timeout: float) -> bytes:
    """A POST's body, or _Refused with the status to answer; at most ``max_body`` bytes are taken."""
    encoding = headers.get("transfer-encoding")
    length = headers.get("content-length")
    if encoding is not None and length is not None:
        raise _Refused(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")  # RFC 9112 6.3
    if headers.get("content-encoding", "identity").lower() != "identity":
        raise _Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "compressed bodies are not accepted")
    if encoding is not None and encoding.lower() != "chunked":
        raise _Refused(HTTPStatus.NOT_IMPLEMENTED, "only chunked transfer coding is understood")
    if encoding is None:
        if length is None:
            raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a body needs a Content-Length")
        if not (length.isascii() and length.isdigit()) or len(length) > 15:
            raise _Refused(HTTPStatus.BAD_REQUEST, "malformed Content-Length")
        if int(length) > max_body:
            raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
    body = bytearray()
    try:
        async with asyncio.timeout(read_timeout):
            async for chunk in request.stream():  # the first read sends 100 Continue when the client expects it
                if len(body) + len(chunk) > max_body:
                    raise _Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body larger than {max_body} bytes")
                body += chunk
    except TimeoutError:
        raise _Refused(HTTPStatus.REQUEST_TIMEOUT, f"the request was not sent within {read_timeout:g}s") from None
    return bytes(body)
