"""When to poll a feed next. Pure: the clock and the randomness are passed in.

After a successful poll the wait is the longest of:

* the feed's **pace**: its configured ``interval`` when the config sets one,
  else a week divided by its entries of the last week (Miniflux's
  entry-frequency scheduler), else the default interval; always within the
  configured minimum and maximum;
* what the server said about **freshness**: the RSS ``<ttl>``, Cache-Control
  ``max-age`` (less ``Age``) and ``Expires``; never beyond the maximum;
* **Retry-After**, which may go beyond the maximum up to :data:`RETRY_AFTER_CAP`.

A configured interval is the feed owner's explicit wish ("poll the wire every
5 minutes"), so it replaces the activity estimate and also beats the freshness
hints: those say how long a copy may be reused, not that asking again is
unwelcome, and conditional GET keeps the extra asks cheap. Retry-After is
different: it is the server asking us to stay away, so it is honoured for
every feed.

Consecutive errors back off exponentially from the minimum up to the error
maximum (``poll.max_error_interval``), which may lie beyond the maximum
(``poll.max_interval``): for a news monitor a quiet feed is not a dead one, so
it is still polled at least every maximum, while a failing feed is given
longer to recover.

Every wait is jittered so that feeds added or failing together (a restart, an
import of 1,000 feeds, a network outage) drift apart instead of polling in
lockstep. Jitter never makes a poll earlier than the minimum or than a server
asked, and never later than the cap that applies.
"""

from __future__ import annotations

import enum
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor import http_headers
from monitor.durations import format_duration
from monitor.http_headers import MAX_DELTA_SECONDS

__all__ = [
    "RETRY_AFTER_CAP",
    "WEEK",
    "CacheHints",
    "Limits",
    "NextPoll",
    "activity_interval",
    "after_change",
    "after_error",
    "after_success",
]

WEEK = timedelta(days=7)
# Retry-After may hold a feed back beyond the configured maximum: a server
# that rate-limits us and sees us back early tends to ban us. Past a day the
# value is more likely a misconfiguration than a wish, and a feed silent for
# longer than that would go unnoticed.
RETRY_AFTER_CAP = timedelta(hours=24)
SUCCESS_JITTER = 0.10  # +-10% of the wait
ERROR_JITTER = 0.20  # +-20%: failures often come in bursts (an outage)
_RANDOM = random.Random()


@dataclass(frozen=True)
class Limits:
    interval: timedelta  # the feed's own interval, or the configured default
    minimum: timedelta
    maximum: timedelta  # the longest wait of a healthy feed, however quiet
    configured: bool = False  # True when ``interval`` is the feed's own, from the config
    error_maximum: timedelta | None = None  # the longest error backoff; None: the maximum

    @property
    def error_ceiling(self) -> timedelta:
        """The longest error backoff: the error maximum, never below the maximum."""
        return max(self.maximum, self.error_maximum or self.maximum)


@dataclass(frozen=True)
class NextPoll:
    at: datetime
    reason: str


@dataclass(frozen=True)
class CacheHints:
    """What a response's headers say about when asking again is worthwhile.

    ``max_age`` is the freshness left (max-age or s-maxage, less Age);
    ``expires`` is on *our* clock (corrected by the response's Date header);
    ``retry_after`` is how long the server asked us to wait.
    ``cache_control`` is the directive behind ``max_age``, to explain it.
    """

    max_age: timedelta | None = None
    expires: datetime | None = None
    retry_after: timedelta | None = None
    cache_control: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], now: datetime) -> CacheHints:
        """Read Cache-Control, Age, Expires, Date and Retry-After.

        Header names are matched case-insensitively. ``no-cache`` and
        ``no-store`` mean the content may change at any moment: no freshness
        hint then. Expires counts only without max-age (RFC 9111 5.3).
        """
        lower = {name.lower(): value for name, value in headers.items()}
        # Measure HTTP-dates against the server's own Date, so that a skewed
        # local clock (or server clock) does not distort the wait.
        served_at = http_headers.http_date(lower.get("date")) or now
        max_age, cache_control, expires = _freshness(lower, now, served_at)
        wait = http_headers.retry_after(lower.get("retry-after"), served_at)
        return cls(max_age, expires, None if wait is None else timedelta(seconds=wait), cache_control)


class _Kind(enum.Enum):
    PACE = "pace"  # our own choice: jitter may go either way
    SERVER = "server"  # a freshness hint: never poll earlier
    RETRY = "retry"  # Retry-After: never earlier, may exceed the maximum


@dataclass(frozen=True)
class _Wait:
    delay: timedelta
    reason: str
    kind: _Kind


def activity_interval(entries_last_week: int, limits: Limits) -> timedelta:
    """A week divided by the feed's entries of the last week, within the limits.

    A feed with no entries in a week is polled at the maximum interval.
    """
    if entries_last_week <= 0:
        return limits.maximum
    # Whole minutes, as Miniflux does: seconds would only add noise to the reason.
    return _clamp(timedelta(minutes=round(WEEK / timedelta(minutes=1) / entries_last_week)), limits)


def after_success(
    now: datetime,
    limits: Limits,
    *,
    entries_last_week: int | None = None,
    hints: CacheHints | None = None,
    ttl_minutes: int | None = None,
    retry_after: float | timedelta | None = None,
    rng: random.Random | None = None,
) -> NextPoll:
    """Next poll after a successful fetch (new items or 304).

    ``entries_last_week`` is None when unknown: the feed then keeps
    ``limits.interval``. ``retry_after`` (seconds or a timedelta) adds to
    ``hints.retry_after``; the longer one counts.
    """
    waits = _retry_waits(hints, retry_after)
    if not limits.configured:
        waits += _freshness_waits(now, hints, ttl_minutes)
    waits.append(_pace(limits, entries_last_week))
    return _settle(now, _longest(waits, limits.maximum), limits.maximum, limits.minimum, SUCCESS_JITTER, rng or _RANDOM)


def after_error(
    now: datetime,
    limits: Limits,
    error_count: int,
    *,
    retry_after: float | timedelta | None = None,
    hints: CacheHints | None = None,
    rng: random.Random | None = None,
) -> NextPoll:
    """Next poll after the ``error_count``-th consecutive failure (1 for the first).

    The wait doubles from the minimum with each failure up to the error
    ceiling (beyond the maximum of a healthy feed); a longer Retry-After (a 429
    or 503 usually carries one) wins.
    """
    ceiling = limits.error_ceiling
    # Compare in seconds, exponent bounded: minimum * 2**n overflows timedelta.
    exponent = min(max(0, error_count - 1), 64)
    if limits.minimum.total_seconds() * 2.0**exponent >= ceiling.total_seconds():
        backoff, note = ceiling, " (maximum)"
    else:
        backoff, note = limits.minimum * 2**exponent, ""
    waits = _retry_waits(hints, retry_after)
    waits.append(_Wait(backoff, f"error backoff ({error_count} in a row): {format_duration(backoff)}{note}", _Kind.PACE))
    return _settle(now, _longest(waits, ceiling), ceiling, limits.minimum, ERROR_JITTER, rng or _RANDOM)


def after_change(
    now: datetime, last_polled_at: datetime | None, limits: Limits, *, entries_last_week: int | None = None
) -> NextPoll:
    """Next poll of a healthy feed whose interval or limits just changed (a reload).

    The new pace counts from the last poll, so that a shorter interval applies
    at once instead of after the old wait: a feed already overdue by the new
    pace is due now. No jitter: the last polls are spread already.
    """
    pace = _pace(limits, entries_last_week)
    if last_polled_at is None or last_polled_at + pace.delay <= now:
        return NextPoll(now, f"{pace.reason}: rescheduled, due now")
    return NextPoll(last_polled_at + pace.delay, f"{pace.reason}: rescheduled")


def _pace(limits: Limits, entries_last_week: int | None) -> _Wait:
    """The feed's own rhythm: configured, else from its activity, else the default."""
    if limits.configured:
        interval = _clamp(limits.interval, limits)
        reason = f"configured interval {format_duration(limits.interval)}"
        if interval != limits.interval:
            reason += f": {_every(interval, limits.interval, limits)}"
        return _Wait(interval, reason, _Kind.PACE)
    if entries_last_week is None:
        interval = _clamp(limits.interval, limits)
        return _Wait(interval, _every(interval, limits.interval, limits), _Kind.PACE)
    interval = activity_interval(entries_last_week, limits)
    if entries_last_week <= 0:
        return _Wait(interval, f"no entries last week: {_every(interval, interval, limits)}", _Kind.PACE)
    entries = "1 entry" if entries_last_week == 1 else f"{entries_last_week} entries"
    every = _every(interval, WEEK / entries_last_week, limits)
    return _Wait(interval, f"{entries} last week: {every}", _Kind.PACE)


def _freshness_waits(now: datetime, hints: CacheHints | None, ttl_minutes: int | None) -> list[_Wait]:
    waits = []
    if ttl_minutes is not None and ttl_minutes > 0:
        waits.append(_Wait(timedelta(minutes=ttl_minutes), f"RSS ttl {format_duration(timedelta(minutes=ttl_minutes))}", _Kind.SERVER))
    if hints is not None and hints.max_age is not None:
        waits.append(_Wait(hints.max_age, f"server Cache-Control {hints.cache_control or 'max-age'}", _Kind.SERVER))
    if hints is not None and hints.expires is not None and hints.expires > now:
        left = hints.expires - now
        waits.append(_Wait(left, f"server Expires in {format_duration(left)}", _Kind.SERVER))
    return waits


def _retry_waits(hints: CacheHints | None, retry_after: float | timedelta | None) -> list[_Wait]:
    candidates = [hints.retry_after if hints else None, retry_after]
    # Bounded before conversion: an absurd header value would overflow timedelta.
    delays = [c if isinstance(c, timedelta) else timedelta(seconds=min(c, MAX_DELTA_SECONDS)) for c in candidates if c is not None]
    delays = [delay for delay in delays if delay > timedelta(0)]
    if not delays:
        return []
    delay = max(delays)
    return [_Wait(delay, f"Retry-After {format_duration(delay)}", _Kind.RETRY)]


def _ceiling(wait: _Wait, cap: timedelta) -> timedelta:
    """How long ``wait`` may last: ``cap``, or longer for a Retry-After."""
    return max(cap, RETRY_AFTER_CAP) if wait.kind is _Kind.RETRY else cap


def _longest(waits: list[_Wait], cap: timedelta) -> _Wait:
    """The wait that lasts longest once capped.

    Capped first, so that a Retry-After is not beaten by a longer freshness
    hint that the cap then cuts short. max() keeps the first of equals: a
    server's wait wins a tie with our own pace, so that jitter does not poll
    earlier than the server asked.
    """
    return max(waits, key=lambda wait: min(wait.delay, _ceiling(wait, cap)))


def _settle(
    now: datetime, wait: _Wait, cap: timedelta, minimum: timedelta, spread: float, rng: random.Random
) -> NextPoll:
    """The poll time for ``wait``: capped, then jittered within what is allowed."""
    ceiling = _ceiling(wait, cap)
    delay, reason, floor = wait.delay, wait.reason, minimum
    if delay > ceiling:
        # Not honoured in full anyway, so jitter may go either way.
        delay, reason = ceiling, f"{reason}, capped at {format_duration(ceiling)}"
    elif wait.kind is not _Kind.PACE:
        floor = delay
    low = max(floor, delay * (1 - spread))
    high = min(ceiling, delay * (1 + spread))
    return NextPoll(now + low + (high - low) * rng.random(), reason)


def _clamp(value: timedelta, limits: Limits) -> timedelta:
    return max(limits.minimum, min(value, limits.maximum))


def _every(interval: timedelta, wanted: timedelta, limits: Limits) -> str:
    """``every 2h``, saying when a limit rather than the rule set the interval."""
    if interval == limits.maximum and wanted >= limits.maximum:
        return f"every {format_duration(interval)} (maximum)"
    if interval == limits.minimum and wanted <= limits.minimum:
        return f"every {format_duration(interval)} (minimum)"
    return f"every {format_duration(interval)}"


# --- HTTP headers -----------------------------------------------------------

# One Cache-Control directive: a token, optionally "=" and a token or a quoted
# string (which may hold commas, e.g. no-cache="Set-Cookie, Vary").
_DIRECTIVE = re.compile(r'([^\s=,";]+)\s*(?:=\s*("[^"]*"?|[^\s,";]*))?')


def _freshness(
    headers: Mapping[str, str], now: datetime, served_at: datetime
) -> tuple[timedelta | None, str | None, datetime | None]:
    """(max_age, the directive behind it, expires) from lower-cased ``headers``."""
    directives = _cache_control(headers.get("cache-control", ""))
    if "no-cache" in directives or "no-store" in directives:
        return None, None, None
    # A poller usually reads through a CDN: what it can see changes only when
    # the shared cache refetches, which s-maxage governs when present. "private"
    # says no shared cache keeps the response, so s-maxage does not apply.
    name = "s-maxage" if "s-maxage" in directives and "private" not in directives else "max-age"
    lifetime = directives.get(name)
    if lifetime is not None:
        # Age is how long a cache has held it already: only the rest is fresh.
        age = _delta_seconds(headers.get("age")) or 0
        label = f"{name}={lifetime}" + (f" (Age {age}s)" if age else "")
        return timedelta(seconds=max(0, lifetime - age)), label, None
    expires = http_headers.http_date(headers.get("expires"))
    # An invalid Expires ("0", "-1") means "already expired" (RFC 9111 5.3).
    if expires is None or expires <= served_at:
        return None, None, None
    return None, None, now + (expires - served_at)


def _cache_control(value: str) -> dict[str, int | None]:
    """Directive name -> delta-seconds (None for flags or non-numeric arguments).

    A directive given twice keeps its smaller value: RFC 9111 treats the
    conflict as invalid freshness, and polling sooner is the safe reading.
    """
    directives: dict[str, int | None] = {}
    for match in _DIRECTIVE.finditer(value):
        name = match.group(1).lower()
        seconds = _delta_seconds((match.group(2) or "").strip('"'))
        previous = directives.get(name)
        if seconds is not None and previous is not None:
            seconds = min(seconds, previous)
        if seconds is not None or name not in directives:
            directives[name] = seconds
    return directives


def _delta_seconds(value: str | None) -> int | None:
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit()):  # not "²", which isdigit() takes and int() refuses
        return None
    # Past 10 digits the value is beyond the cap anyway; int() refuses more than 4300.
    return MAX_DELTA_SECONDS if len(value) > 10 else min(int(value), MAX_DELTA_SECONDS)
