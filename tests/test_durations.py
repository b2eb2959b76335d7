"""monitor.durations: durations as people write them and as they read them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.durations import format_duration, parse_duration

S, M, H, D = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


# --- parse_duration (moved from config.py) ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90), ("30s", 30), ("10m", 600), ("6h", 21600), ("1d", 86400), ("1.5h", 5400), ("2w", 1209600)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["soon", "-5m", "0", "10 minutes", True])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_more_duration_forms():
    assert parse_duration(" 250ms ") == timedelta(milliseconds=250)
    assert parse_duration(1.5) == timedelta(seconds=1.5)
    assert parse_duration(timedelta(hours=2)) == timedelta(hours=2)


def test_the_config_still_reads_durations_through_parse_duration():
    from monitor import config

    assert config.parse_duration is parse_duration


# --- format_duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0 s"),
        (45 * S, "45 s"),
        (59.9 * S, "59 s"),  # truncated, never rounded up
        (M, "1 min"),
        (90 * S, "1 min"),  # seconds are dropped from a minute on
        (12 * M, "12 min"),
        (H, "1 h"),
        (H + 30 * M, "1 h 30 min"),
        (4 * H + 16 * M, "4 h 16 min"),
        (D, "1 d"),
        (2 * D, "2 d"),
        (3 * D + 2 * H, "3 d 2 h"),
        (D + 5 * M, "1 d 5 min"),
        (2**31 * S, "24855 d 3 h 14 min"),
        (-5 * M, "0 s"),  # a clock stepped back
        (timedelta.max, "999999999 d 23 h 59 min"),
    ],
)
def test_format_duration(delta, text):
    assert format_duration(delta) == text


def test_format_duration_reads_back_through_parse_duration_for_whole_units():
    for text, delta in (("45 s", 45 * S), ("12 min", 12 * M), ("2 d", 2 * D)):
        value, unit = text.split()
        assert parse_duration(value + {"s": "s", "min": "m", "d": "d"}[unit]) == delta
        assert format_duration(delta) == text
