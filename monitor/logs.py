"""Structured logs: one line per event, ``key=value`` by default or JSON.

Every line is redacted as it is formatted (``redact.redact_log_line``): no URL's
credentials, and no channel's secrets in the lines of libraries, reach the log.

Code logs an event name as the message and the details as ``extra``:
``log.info("poll.done", extra={"feed": name, "fresh": 3})`` becomes
``2026-11-27T06:50:00Z INFO poll.done feed=bbc-world fresh=3``.

A library's line (apprise, httpx...) becomes an event named after its logger, its
text the ``message`` field, with the fields of the :func:`log_context` it was
written in: ``WARNING apprise message="Failed to send JSON POST notification: ..." channel=desk``.
Libraries log through the root handler only, so each line comes out once.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from monitor.redact import OWN_LOGGERS, redact_log_line

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


# Fields added to the lines libraries write meanwhile (a library cannot pass ``extra``).
_CONTEXT: ContextVar[dict[str, Any]] = ContextVar("log_context", default={})


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Within this block (and this thread or task), library log lines carry ``fields``."""
    token = _CONTEXT.set({**_CONTEXT.get(), **fields})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def _own(record: logging.LogRecord) -> bool:
    return record.name == OWN_LOGGERS or record.name.startswith(OWN_LOGGERS + ".")


def _event(record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
    """The event name and fields of a record: ours as logged; a library's named after its logger."""
    fields = {key: value for key, value in vars(record).items() if key not in _STANDARD}
    if _own(record):
        return record.getMessage(), fields
    return record.name, {"message": record.getMessage(), **_CONTEXT.get(), **fields}


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text == "" or any(ch in text for ch in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event, fields = _event(record)
        parts = [stamp, record.levelname, event]
        parts += [f"{key}={_quote(value)}" for key, value in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += " traceback=" + _quote(self.formatException(record.exc_info))
        return redact_log_line(line, record.name)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event, fields = _event(record)
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "event": event,
            **fields,
        }
        if record.exc_info:
            payload["traceback"] = self.formatException(record.exc_info)
        return redact_log_line(json.dumps(payload, default=str, ensure_ascii=False), record.name)


def setup_logging(level: str = "INFO", fmt: str = "kv") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries speak through our handler but only when it matters.
    for noisy in ("httpx", "httpcore", "apscheduler", "apprise", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Through the root handler alone: a handler of a library's own would print its lines a second time.
    for name in ("apprise",):
        library = logging.getLogger(name)
        library.handlers[:] = [h for h in library.handlers if isinstance(h, logging.NullHandler)]
        library.propagate = True
