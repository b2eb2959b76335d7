"""When to poll a feed next. Pure: the clock and the randomness are passed in."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Limits:
    interval: timedelta  # the feed's own interval, or the configured default
    minimum: timedelta
    maximum: timedelta


@dataclass(frozen=True)
class NextPoll:
    at: datetime
    reason: str


def _clamp(value: timedelta, limits: Limits) -> timedelta:
    return max(limits.minimum, min(value, limits.maximum))


def after_success(now: datetime, limits: Limits, *, retry_after: float | None = None) -> NextPoll:
    """Next poll after a successful fetch (new items or 304)."""
    interval = _clamp(limits.interval, limits)
    reason = f"every {_human(interval)}"
    if retry_after is not None and timedelta(seconds=retry_after) > interval:
        interval = min(timedelta(seconds=retry_after), limits.maximum)
        reason = f"server asked to wait {_human(interval)}"
    return NextPoll(now + interval, reason)


def after_error(
    now: datetime,
    limits: Limits,
    error_count: int,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> NextPoll:
    """Next poll after the ``error_count``-th consecutive failure (1 for the first).

    Exponential backoff from the minimum interval, with up to 25% jitter so
    that many feeds failing together (a network outage) do not retry in lockstep.
    """
    rng = rng or random.Random()
    base = limits.minimum * (2 ** max(0, error_count - 1))
    delay = min(base, limits.maximum)
    delay = delay * (1 + 0.25 * rng.random())
    delay = min(delay, limits.maximum)
    reason = f"error backoff ({error_count} in a row)"
    if retry_after is not None and timedelta(seconds=retry_after) > delay:
        delay = min(timedelta(seconds=retry_after), limits.maximum)
        reason = f"server asked to wait {_human(delay)}"
    return NextPoll(now + delay, reason)


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
