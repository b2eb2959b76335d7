"""Structured logs: one line per event, ``key=value`` by default or JSON.

Every line is redacted as it is formatted (``redact.redact_log_line``): no URL's
credentials, and no channel's secrets in the lines of libraries, reach the log.

Code logs an event name as the message and the details as ``extra``:
``log.info("poll.done", extra={"feed": name, "fresh": 3})`` becomes
``2026-11-27T06:50:00Z INFO poll.done feed=bbc-world fresh=3``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from monitor.redact import redact_log_line

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD}


def _quote(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    if text == "" or any(ch in text for ch in ' ="\n\t'):
        return json.dumps(text, ensure_ascii=False)
    return text


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [stamp, record.levelname, record.getMessage()]
        parts += [f"{key}={_quote(value)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += " traceback=" + _quote(self.formatException(record.exc_info))
        return redact_log_line(line, record.name)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "event": record.getMessage(),
            **_fields(record),
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
