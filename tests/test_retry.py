"""Retries of failed sends: jittered exponential backoff, Retry-After as a floor, the retry window."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.retry import give_up, retry_delay

NOON = datetime(2025, 1, 14, 12, 0, tzinfo=UTC)


class Fixed(random.Random):
    """A Random whose random() always returns the same value: the ends of the jitter range."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


BACKOFF = {"initial": timedelta(seconds=30), "maximum": timedelta(hours=1)}
LOWEST, HIGHEST = Fixed(0.0), Fixed(0.999999)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (7, 1920), (8, 3600), (9, 3600), (40, 3600), (10_000, 3600)],
)
def test_retry_delay_doubles_up_to_the_maximum_with_jitter_in_the_upper_half(attempt: int, ceiling: int) -> None:
    assert retry_delay(attempt, rng=LOWEST, **BACKOFF) == timedelta(seconds=ceiling / 2)
    assert timedelta(seconds=ceiling * 0.99) < retry_delay(attempt, rng=HIGHEST, **BACKOFF) <= timedelta(seconds=ceiling)


def test_retry_delays_never_shrink_and_stay_in_bounds_whatever_the_dice() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        delays = [retry_delay(attempt, rng=rng, **BACKOFF) for attempt in range(1, 12)]
        assert all(BACKOFF["initial"] / 2 <= delay <= BACKOFF["maximum"] for delay in delays)
        # Each attempt's shortest wait is the previous attempt's longest, so no sequence shrinks...
        assert all(later >= earlier for earlier, later in zip(delays, delays[1:3]))
    # ...and the jitter really spreads a batch that failed together.
    batch = {retry_delay(3, rng=rng, **BACKOFF) for _ in range(50)}
    assert len(batch) == 50


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        (None, timedelta(seconds=30)),  # attempt 2 waits 30-60 s
        (5.0, timedelta(seconds=30)),  # the backoff is already longer
        (45.0, timedelta(seconds=45)),
        (600.0, timedelta(seconds=600)),
        (7200.0, timedelta(hours=2)),  # honoured beyond the maximum
        (1e30, timedelta(seconds=1e9)),  # a hostile value does not overflow
    ],
)
def test_retry_after_is_a_floor(retry_after: float | None, expected: timedelta) -> None:
    assert retry_delay(2, rng=LOWEST, retry_after=retry_after, **BACKOFF) == expected
    assert retry_delay(2, rng=HIGHEST, retry_after=retry_after, **BACKOFF) >= expected


@pytest.mark.parametrize(
    "bad",
    [
        {"attempt": 0},
        {"attempt": 1, "initial": timedelta(0)},
        {"attempt": 1, "maximum": timedelta(seconds=10)},
    ],
)
def test_retry_delay_refuses_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError):
        retry_delay(**{**BACKOFF, **bad, "rng": LOWEST})


@pytest.mark.parametrize(
    ("next_attempt", "dead"),
    [
        (NOON + timedelta(hours=23), False),
        (NOON + timedelta(hours=24), False),  # the last attempt may land on the window's edge
        (NOON + timedelta(hours=24, microseconds=1), True),
        (NOON + timedelta(days=3), True),
    ],
)
def test_give_up_after_the_retry_window(next_attempt: datetime, dead: bool) -> None:
    assert give_up(NOON, next_attempt, timedelta(hours=24)) is dead


def test_retries_end_in_dead_within_the_window() -> None:
    """Backoff and give_up together: a channel that never recovers is declared dead on time."""
    window = timedelta(hours=24)
    due_since = clock = NOON
    rng = random.Random(7)
    attempt = 0
    while True:
        attempt += 1
        next_attempt = clock + retry_delay(attempt, rng=rng, **BACKOFF)
        if give_up(due_since, next_attempt, window):
            break
        clock = next_attempt
    assert window - BACKOFF["maximum"] <= clock - due_since <= window
    assert 25 <= attempt <= 55
