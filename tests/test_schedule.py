"""monitor.feeds.schedule: the scheduling maths as tables, with an injected clock.

Jitter draws from the ``rng`` passed in. :class:`Pinned` returns one fixed
draw, so a table row can state the exact window a rule allows: the earliest
poll (draw 0) and the latest (draw 1).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.feeds.schedule import (
    RETRY_AFTER_CAP,
    CacheHints,
    Limits,
    NextPoll,
    activity_interval,
    after_error,
    after_success,
)

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
S, M, H, D = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# The defaults of poll: a quiet feed waits at most an hour, a failing one up to 6 hours.
LIMITS = Limits(interval=10 * M, minimum=2 * M, maximum=1 * H, error_maximum=6 * H)
LONG = Limits(interval=10 * M, minimum=2 * M, maximum=2 * D)  # room for slow feeds


def configured(interval: timedelta) -> Limits:
    return Limits(interval=interval, minimum=2 * M, maximum=1 * H, configured=True, error_maximum=6 * H)


class Pinned(random.Random):
    """A Random whose every draw is ``value``."""

    def __init__(self, value: float):
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def window(decide) -> tuple[timedelta, timedelta, set[str]]:
    """The earliest and latest wait ``decide(rng)`` can give, and its reasons."""
    earliest, latest = decide(Pinned(0.0)), decide(Pinned(1.0))
    return earliest.at - NOW, latest.at - NOW, {earliest.reason, latest.reason}


# --- activity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "limits", "expected"),
    [
        (0, LIMITS, 1 * H),  # silent for a week: as rarely as allowed, which is still hourly
        (-3, LIMITS, 1 * H),
        (1, LIMITS, 1 * H),  # a week, clamped to the maximum
        (1, LONG, 2 * D),
        (7, LONG, 1 * D),
        (5, LONG, 33 * H + 36 * M),
        (168, LIMITS, 1 * H),
        (1000, LIMITS, 10 * M),  # 10.08 minutes, rounded to whole minutes
        (10_080, LIMITS, 2 * M),  # one a minute: clamped to the minimum
        (1_000_000, LIMITS, 2 * M),
    ],
)
def test_activity_interval_is_a_week_over_entries_within_limits(entries, limits, expected):
    assert activity_interval(entries, limits) == expected


# --- after a success: one rule at a time, then together -------------------------

SUCCESS_CASES = {
    # name: (limits, keyword arguments, reason, earliest, latest)
    "activity unknown keeps the interval": (LIMITS, {}, "every 10 min", 9 * M, 11 * M),
    "no entries": (LIMITS, {"entries_last_week": 0}, "no entries last week: every 1 h (maximum)", 54 * M, 1 * H),
    "a daily feed": (LONG, {"entries_last_week": 7}, "7 entries last week: every 1 d", 0.9 * D, 1.1 * D),
    "a daily feed, clamped": (LIMITS, {"entries_last_week": 7}, "7 entries last week: every 1 h (maximum)", 54 * M, 1 * H),
    "one entry": (LONG, {"entries_last_week": 1}, "1 entry last week: every 2 d (maximum)", 1.8 * D, 2 * D),
    "an hourly feed": (LIMITS, {"entries_last_week": 168}, "168 entries last week: every 1 h (maximum)", 54 * M, 1 * H),
    "a half-hourly feed": (LIMITS, {"entries_last_week": 336}, "336 entries last week: every 30 min", 27 * M, 33 * M),
    "a firehose": (LIMITS, {"entries_last_week": 50_000}, "50000 entries last week: every 2 min (minimum)", 2 * M, 2.2 * M),
    "RSS ttl": (LIMITS, {"entries_last_week": 336, "ttl_minutes": 45}, "RSS ttl 45 min", 45 * M, 49.5 * M),
    "RSS ttl below the pace": (LIMITS, {"entries_last_week": 336, "ttl_minutes": 20}, "336 entries last week: every 30 min", 27 * M, 33 * M),
    "RSS ttl equal to the pace": (LIMITS, {"entries_last_week": 336, "ttl_minutes": 30}, "RSS ttl 30 min", 30 * M, 33 * M),
    "RSS ttl of a day, capped": (LIMITS, {"ttl_minutes": 1440}, "RSS ttl 1 d, capped at 1 h", 54 * M, 1 * H),
    "max-age": (LIMITS, {"hints": CacheHints(max_age=40 * M, cache_control="max-age=2400")},
                "server Cache-Control max-age=2400", 40 * M, 44 * M),
    "max-age beyond the maximum, capped": (LIMITS, {"hints": CacheHints(max_age=2 * H, cache_control="max-age=7200")},
                "server Cache-Control max-age=7200, capped at 1 h", 54 * M, 1 * H),
    "max-age below the pace": (LIMITS, {"hints": CacheHints(max_age=5 * M, cache_control="max-age=300")}, "every 10 min", 9 * M, 11 * M),
    "Expires": (LIMITS, {"hints": CacheHints(expires=NOW + 40 * M)}, "server Expires in 40 min", 40 * M, 44 * M),
    "Expires beyond the maximum, capped": (LIMITS, {"hints": CacheHints(expires=NOW + 3 * H)}, "server Expires in 3 h, capped at 1 h", 54 * M, 1 * H),
    "Expires in the past": (LIMITS, {"hints": CacheHints(expires=NOW - 3 * H)}, "every 10 min", 9 * M, 11 * M),
    "Retry-After in seconds": (LIMITS, {"retry_after": 7200.0}, "Retry-After 2 h", 2 * H, 2.2 * H),
    "Retry-After beyond the maximum": (LIMITS, {"retry_after": 12 * H}, "Retry-After 12 h", 12 * H, 13.2 * H),
    "Retry-After of days, capped": (LIMITS, {"retry_after": 3 * D}, "Retry-After 3 d, capped at 1 d", 0.9 * RETRY_AFTER_CAP, RETRY_AFTER_CAP),
    "Retry-After: the longer of header and argument": (
        LIMITS, {"retry_after": 60.0, "hints": CacheHints(retry_after=2 * H)}, "Retry-After 2 h", 2 * H, 2.2 * H),
    "configured interval": (configured(5 * M), {}, "configured interval 5 min", 4.5 * M, 5.5 * M),
    "configured interval beats activity and cache hints": (
        configured(5 * M),
        {"entries_last_week": 0, "ttl_minutes": 60, "hints": CacheHints(max_age=H, expires=NOW + 2 * H, cache_control="max-age=3600")},
        "configured interval 5 min", 4.5 * M, 5.5 * M),
    "configured interval yields to Retry-After": (configured(5 * M), {"retry_after": 1800.0}, "Retry-After 30 min", 30 * M, 33 * M),
    "configured interval below the minimum": (configured(1 * M), {}, "configured interval 1 min: every 2 min (minimum)", 2 * M, 2.2 * M),
    "configured interval above the maximum": (configured(12 * H), {}, "configured interval 12 h: every 1 h (maximum)", 54 * M, 1 * H),
    "all together: the longest wins": (
        LIMITS,
        {"entries_last_week": 336, "ttl_minutes": 20, "retry_after": 50 * 60.0,
         "hints": CacheHints(max_age=40 * M, expires=NOW + 45 * M, cache_control="max-age=2400")},
        "Retry-After 50 min", 50 * M, 55 * M),
    "a Retry-After beats a longer hint the maximum cuts short": (
        LIMITS, {"retry_after": 90 * 60.0, "hints": CacheHints(expires=NOW + 3 * H)}, "Retry-After 1 h 30 min", 90 * M, 99 * M),
}  # fmt: skip


@pytest.mark.parametrize(("limits", "kwargs", "reason", "earliest", "latest"), SUCCESS_CASES.values(), ids=SUCCESS_CASES.keys())
def test_after_success(limits, kwargs, reason, earliest, latest):
    low, high, reasons = window(lambda rng: after_success(NOW, limits, rng=rng, **kwargs))
    assert reasons == {reason}
    assert (low, high) == (earliest, latest)


def test_header_hints_flow_into_the_decision():
    headers = {"Date": "Mon, 04 May 2026 12:00:00 GMT", "Cache-Control": "public, max-age=1800", "Age": "600"}
    hints = CacheHints.from_headers(headers, NOW)
    low, _, reasons = window(lambda rng: after_success(NOW, LIMITS, hints=hints, rng=rng))
    assert (low, reasons) == (20 * M, {"server Cache-Control max-age=1800 (Age 600s)"})


# --- after an error ---------------------------------------------------------------

ERROR_CASES = {
    # name: (error_count, keyword arguments, reason, earliest, latest) with LIMITS (2m, quiet 1h, errors 6h):
    # a failing feed backs off beyond the hour a quiet one waits at most.
    "first error": (1, {}, "error backoff (1 in a row): 2 min", 2 * M, 2.4 * M),
    "second": (2, {}, "error backoff (2 in a row): 4 min", 3.2 * M, 4.8 * M),
    "third": (3, {}, "error backoff (3 in a row): 8 min", 6.4 * M, 9.6 * M),
    "sixth, still below the quiet maximum": (6, {}, "error backoff (6 in a row): 1 h 4 min", 64 * 0.8 * M, 64 * 1.2 * M),
    "eighth, far beyond it": (8, {}, "error backoff (8 in a row): 4 h 16 min", 256 * 0.8 * M, 256 * 1.2 * M),
    "ninth reaches the maximum": (9, {}, "error backoff (9 in a row): 6 h (maximum)", 4.8 * H, 6 * H),
    "thousandth stays there": (1000, {}, "error backoff (1000 in a row): 6 h (maximum)", 4.8 * H, 6 * H),
    "a zero count counts as the first": (0, {}, "error backoff (0 in a row): 2 min", 2 * M, 2.4 * M),
    "Retry-After longer than the backoff": (1, {"retry_after": 3600.0}, "Retry-After 1 h", 1 * H, 1.2 * H),
    "Retry-After shorter than the backoff": (5, {"retry_after": 60.0}, "error backoff (5 in a row): 32 min", 25.6 * M, 38.4 * M),
    "Retry-After from the headers": (1, {"hints": CacheHints(retry_after=10 * M)}, "Retry-After 10 min", 10 * M, 12 * M),
    "Retry-After beyond the maximum": (1, {"retry_after": 20 * H}, "Retry-After 20 h", 20 * H, RETRY_AFTER_CAP),
    "an absurd Retry-After": (1, {"retry_after": 1e20}, "Retry-After 24855 d 3 h 14 min, capped at 1 d", 0.8 * RETRY_AFTER_CAP, RETRY_AFTER_CAP),
    "Retry-After of a week, capped": (9, {"retry_after": 7 * D}, "Retry-After 7 d, capped at 1 d", 0.8 * RETRY_AFTER_CAP, RETRY_AFTER_CAP),
}  # fmt: skip


@pytest.mark.parametrize(("count", "kwargs", "reason", "earliest", "latest"), ERROR_CASES.values(), ids=ERROR_CASES.keys())
def test_after_error(count, kwargs, reason, earliest, latest):
    low, high, reasons = window(lambda rng: after_error(NOW, LIMITS, count, rng=rng, **kwargs))
    assert reasons == {reason}
    assert (low, high) == (earliest, latest)


def test_backoff_grows_until_the_cap_and_never_shrinks():
    waits = [after_error(NOW, LIMITS, n, rng=Pinned(0.5)).at - NOW for n in range(1, 15)]
    assert waits == sorted(waits)
    # Beyond the quiet maximum, up to the error ceiling (jitter at the cap only goes earlier).
    assert LIMITS.maximum < waits[-1] == waits[-2] <= LIMITS.error_maximum


# --- jitter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decide", "low", "high"),
    [
        (lambda rng: after_success(NOW, LIMITS, entries_last_week=336, rng=rng), 27 * M, 33 * M),
        (lambda rng: after_success(NOW, LIMITS, retry_after=7200.0, rng=rng), 2 * H, 2.2 * H),
        (lambda rng: after_error(NOW, LIMITS, 20, rng=rng), 4.8 * H, 6 * H),
    ],
    ids=["pace spreads both ways", "a server wait only ever later", "backoff at the cap only ever earlier"],
)
def test_seeded_jitter_stays_in_bounds_and_spreads(decide, low, high):
    rng = random.Random(20260504)
    waits = [decide(rng).at - NOW for _ in range(1000)]
    assert all(low <= wait <= high for wait in waits)
    # Spread over the window, not bunched at an edge.
    span = high - low
    assert min(waits) < low + span * 0.05 and max(waits) > high - span * 0.05
    assert len(set(waits)) > 990


def test_the_same_seed_gives_the_same_schedule():
    first = [after_success(NOW, LIMITS, entries_last_week=40, rng=random.Random(7)) for _ in range(3)]
    again = [after_success(NOW, LIMITS, entries_last_week=40, rng=random.Random(7)) for _ in range(3)]
    assert first == again


def test_the_pipeline_calls_still_work_without_an_rng():
    success = after_success(NOW, LIMITS)
    failure = after_error(NOW, LIMITS, 3, retry_after=None)
    throttled = after_error(NOW, LIMITS, 1, retry_after=120.0)
    assert isinstance(success, NextPoll) and 9 * M <= success.at - NOW <= 11 * M
    assert failure.reason == "error backoff (3 in a row): 8 min"
    assert throttled.reason == "Retry-After 2 min" and 2 * M <= throttled.at - NOW <= 2.4 * M


# --- headers -------------------------------------------------------------------------

DATE = "Mon, 04 May 2026 12:00:00 GMT"  # the server's clock agrees with NOW
SKEWED = "Mon, 04 May 2026 11:00:00 GMT"  # the server's clock is an hour behind ours

HEADER_CASES = {
    "nothing": ({}, CacheHints()),
    "max-age": ({"Cache-Control": "public, max-age=3600"}, CacheHints(max_age=H, cache_control="max-age=3600")),
    "directive case": ({"cache-control": "MAX-AGE=60"}, CacheHints(max_age=M, cache_control="max-age=60")),
    "s-maxage governs the CDN we read through": (
        {"Cache-Control": "public, max-age=60, s-maxage=600"}, CacheHints(max_age=10 * M, cache_control="s-maxage=600")),
    "private responses skip s-maxage": (
        {"Cache-Control": "private, max-age=60, s-maxage=600"}, CacheHints(max_age=M, cache_control="max-age=60")),
    "Age is subtracted": (
        {"Cache-Control": "max-age=600", "Age": "100"}, CacheHints(max_age=500 * S, cache_control="max-age=600 (Age 100s)")),
    "Age beyond max-age": ({"Cache-Control": "max-age=60", "Age": "300"}, CacheHints(max_age=timedelta(0), cache_control="max-age=60 (Age 300s)")),
    "a repeated directive keeps the smaller": ({"Cache-Control": "max-age=600, max-age=60"}, CacheHints(max_age=M, cache_control="max-age=60")),
    "quoted commas": ({"Cache-Control": 'ext="a, max-age=9", max-age=120'}, CacheHints(max_age=2 * M, cache_control="max-age=120")),
    "junk max-age": ({"Cache-Control": "max-age=soon"}, CacheHints()),
    "no-cache": ({"Cache-Control": "no-cache, max-age=600", "Expires": "Mon, 04 May 2026 14:00:00 GMT"}, CacheHints()),
    "no-store": ({"Cache-Control": "no-store", "Expires": "Mon, 04 May 2026 14:00:00 GMT"}, CacheHints()),
    "huge max-age": ({"Cache-Control": "max-age=99999999999999999999"}, CacheHints(max_age=2**31 * S, cache_control="max-age=2147483648")),
    "Expires": ({"Expires": "Mon, 04 May 2026 14:00:00 GMT", "Date": DATE}, CacheHints(expires=NOW + 2 * H)),
    "Expires without Date": ({"Expires": "Mon, 04 May 2026 14:00:00 GMT"}, CacheHints(expires=NOW + 2 * H)),
    "Expires on a skewed server clock": ({"Expires": "Mon, 04 May 2026 13:00:00 GMT", "Date": SKEWED}, CacheHints(expires=NOW + 2 * H)),
    "Expires in the past": ({"Expires": "Mon, 04 May 2026 10:00:00 GMT", "Date": DATE}, CacheHints()),
    "Expires 0": ({"Expires": "0"}, CacheHints()),
    "Expires -1": ({"Expires": "-1", "Date": DATE}, CacheHints()),
    "max-age beats Expires": (
        {"Cache-Control": "max-age=60", "Expires": "Mon, 04 May 2026 14:00:00 GMT"}, CacheHints(max_age=M, cache_control="max-age=60")),
    "Retry-After seconds": ({"Retry-After": "120"}, CacheHints(retry_after=2 * M)),
    "Retry-After date": ({"Retry-After": "Mon, 04 May 2026 12:30:00 GMT", "Date": DATE}, CacheHints(retry_after=30 * M)),
    "Retry-After date on a skewed server": ({"Retry-After": "Mon, 04 May 2026 11:30:00 GMT", "Date": SKEWED}, CacheHints(retry_after=30 * M)),
    "Retry-After in the past": ({"Retry-After": "Mon, 04 May 2026 11:00:00 GMT", "Date": DATE}, CacheHints(retry_after=timedelta(0))),
    "Retry-After junk": ({"Retry-After": "later please"}, CacheHints()),
    "Retry-After with a fraction": ({"Retry-After": "1.5"}, CacheHints(retry_after=1.5 * S)),
    "huge Retry-After": ({"Retry-After": "9" * 30}, CacheHints(retry_after=2**31 * S)),
    "a max-age of 5000 digits": ({"Cache-Control": "max-age=" + "9" * 5000}, CacheHints(max_age=2**31 * S, cache_control="max-age=2147483648")),
    "non-ASCII digits are no numbers": ({"Cache-Control": "max-age=²", "Age": "١٢", "Retry-After": "²"}, CacheHints()),
    "non-ASCII Age is ignored": ({"Cache-Control": "max-age=60", "Age": "١٢"}, CacheHints(max_age=M, cache_control="max-age=60")),
    "header names in any case": ({"CACHE-CONTROL": "max-age=60", "retry-AFTER": "5"}, CacheHints(M, None, 5 * S, "max-age=60")),
}  # fmt: skip


@pytest.mark.parametrize(("headers", "expected"), HEADER_CASES.values(), ids=HEADER_CASES.keys())
def test_cache_hints_from_headers(headers, expected):
    assert CacheHints.from_headers(headers, NOW) == expected

