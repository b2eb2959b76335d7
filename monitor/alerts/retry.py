"""When to try a failed send again, and when to stop. Pure: randomness is passed in."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

__all__ = ["give_up", "retry_delay"]

# A Retry-After beyond this is treated as this (about 31 years): timedelta and
# datetime overflow long before a hostile header's value would, and give_up()
# marks such an alert dead anyway.
_LONGEST_WAIT_SECONDS = 1e9


def retry_delay(
    attempt: int,
    *,
    initial: timedelta,
    maximum: timedelta,
    rng: random.Random,
    retry_after: float | None = None,
) -> timedelta:
    """How long to wait after the ``attempt``-th failed send in a row (1 for the first).

    Equal jitter: a random point in the upper half of a ceiling that doubles from
    ``initial`` up to ``maximum``. The fixed lower half keeps the backoff growing
    (an attempt's shortest wait is the previous attempt's longest), where full
    jitter could retry a receiver that just failed almost at once; the random half
    spreads the alerts that failed together in a channel outage so they do not
    come back in lockstep. Decorrelated jitter would need the previous delay stored.

    A receiver's Retry-After is a floor, even above ``maximum``: it said when it
    will take messages again. Whether that is too late is give_up's question.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    if initial <= timedelta(0) or maximum < initial:
        raise ValueError(f"need 0 < initial <= maximum, got initial={initial} maximum={maximum}")
    # Float seconds: initial * 2**attempt overflows timedelta after a few dozen attempts.
    ceiling = min(initial.total_seconds() * 2.0 ** min(attempt - 1, 64), maximum.total_seconds())
    delay = ceiling * (0.5 + 0.5 * rng.random())
    if retry_after is not None:
        delay = max(delay, min(retry_after, _LONGEST_WAIT_SECONDS))
    return timedelta(seconds=delay)


def give_up(due_since: datetime, next_attempt: datetime, window: timedelta) -> bool:
    """True when ``next_attempt`` falls beyond the retry window: mark the alert dead.

    ``due_since`` is when the alert first became due: its creation for an instant
    alert, its release for a held one. Counting from creation would leave an alert
    held 20 hours for a daily digest only 4 hours of retries.
    """
    return next_attempt - due_since > window
