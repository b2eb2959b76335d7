"""What the daemon's HTTP listeners share without loading the web stack: where they may listen, plain answers.

The listeners themselves (``/healthz`` and ``/metrics`` of ``health:``, the
WebSub callback, the dashboard) are ASGI apps served by uvicorn through
:mod:`monitor.web.server`, imported only when one is switched on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from http import HTTPStatus


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(frozen=True)
class Response:
    """One answer: status, body, its content type and any further headers (sent with no-store and close)."""

    status: HTTPStatus
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def text(status: HTTPStatus, message: str = "", *headers: tuple[str, str]) -> Response:
    """A plain-text response: ``message`` (the status phrase if none) and a newline."""
    return Response(status, (message or status.phrase).encode() + b"\n", headers=headers)
