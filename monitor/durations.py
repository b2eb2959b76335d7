"""Durations as people write them (config, CLI options) and read them (reasons, messages). Pure."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

__all__ = ["format_duration", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """``90`` (seconds), ``"30s"``, ``"10m"``, ``"6h"``, ``"1d"``, ``"2w"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m, 6h or 1d")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"invalid duration {value!r}; expected a number and a unit: 30s, 10m, 6h, 1d")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta) -> str:
    """A duration for people: "45 s", "12 min", "1 h 30 min", "2 d".

    Below a minute in whole seconds; from a minute on in days, hours and
    minutes, each shown only when not zero, seconds dropped ("1 min" for 90 s).
    Truncated, never rounded up. A negative duration (a clock stepped back)
    reads "0 s".
    """
    seconds = max(0, delta // timedelta(seconds=1))  # exact, where total_seconds() rounds
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    return " ".join(f"{value} {unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if value)
