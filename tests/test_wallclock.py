"""Wall clocks and quiet hours: windows of local time as UTC instants, across DST changes."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from conftest import NIGHT as NIGHT_TEXT
from conftest import paris, utc

from monitor.alerts.wallclock import QuietHours
from monitor.errors import PolicyError

NIGHT = QuietHours.parse(NIGHT_TEXT)


@pytest.mark.parametrize(
    ("text", "start", "end", "zone"),
    [
        ("22:00-07:00 Europe/Paris", time(22), time(7), "Europe/Paris"),
        ("  7:30 - 9:05   UTC ", time(7, 30), time(9, 5), "UTC"),
        ("00:00-23:59 America/New_York", time(0), time(23, 59), "America/New_York"),
    ],
)
def test_quiet_hours_parse(text: str, start: time, end: time, zone: str) -> None:
    quiet = QuietHours.parse(text)
    assert (quiet.start, quiet.end, quiet.tz.key) == (start, end, zone)


def test_quiet_hours_print_as_parsed() -> None:
    assert str(NIGHT) == "22:00-07:00 Europe/Paris"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00-07:00 UTC", "25:00 is not a time of day"),
        ("22:00-07:60 UTC", "07:60 is not a time of day"),
        ("22:00-07:00 Europe/Pariss", "unknown time zone 'Europe/Pariss'"),
        ("22:00-07:00 ../../etc/passwd", "unknown time zone"),
        ("22:00-07:00", "add a time zone"),
        ("07:00-07:00 UTC", "start and end are both 07:00"),
        ("10pm-7am UTC", "expected 'HH:MM-HH:MM Zone'"),
        ("", "expected 'HH:MM-HH:MM Zone'"),
    ],
)
def test_quiet_hours_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message) as caught:
        QuietHours.parse(text)
    assert isinstance(caught.value, ValueError)  # config validation catches ValueError


# Europe/Paris: clocks go 02:00 -> 03:00 on 2025-03-30 and 03:00 -> 02:00 on 2025-10-26.
@pytest.mark.parametrize(
    ("window", "moment", "ends"),
    [
        # An ordinary winter night: 22:00-07:00 CET is 21:00-06:00 UTC.
        (NIGHT, paris(2025, 1, 14, 21, 59), None),
        (NIGHT, paris(2025, 1, 14, 22, 0), utc(2025, 1, 15, 6, 0)),  # start is inside
        (NIGHT, paris(2025, 1, 14, 23, 59), utc(2025, 1, 15, 6, 0)),
        (NIGHT, paris(2025, 1, 15, 0, 0), utc(2025, 1, 15, 6, 0)),  # after midnight
        (NIGHT, paris(2025, 1, 15, 6, 59), utc(2025, 1, 15, 6, 0)),
        (NIGHT, paris(2025, 1, 15, 7, 0), None),  # end is outside
        (NIGHT, paris(2025, 1, 15, 12, 0), None),
        # Spring forward: the night is 8 hours long, 21:00-05:00 UTC.
        (NIGHT, utc(2025, 3, 29, 21, 0), utc(2025, 3, 30, 5, 0)),
        (NIGHT, utc(2025, 3, 30, 1, 30), utc(2025, 3, 30, 5, 0)),
        (NIGHT, utc(2025, 3, 30, 5, 0), None),
        # Fall back: the night is 10 hours long, 20:00-06:00 UTC.
        (NIGHT, utc(2025, 10, 25, 19, 59), None),
        (NIGHT, utc(2025, 10, 25, 20, 0), utc(2025, 10, 26, 6, 0)),
        (NIGHT, utc(2025, 10, 26, 5, 30), utc(2025, 10, 26, 6, 0)),
        # A window that does not cross midnight.
        (QuietHours.parse("12:00-14:00 UTC"), utc(2025, 1, 1, 11, 59), None),
        (QuietHours.parse("12:00-14:00 UTC"), utc(2025, 1, 1, 13, 0), utc(2025, 1, 1, 14, 0)),
        (QuietHours.parse("12:00-14:00 UTC"), utc(2025, 1, 1, 23, 0), None),
        # An end the spring jump skips (02:30 never happens): the window ends at the jump, 03:00 CEST.
        (QuietHours.parse("23:00-02:30 Europe/Paris"), utc(2025, 3, 29, 23, 0), utc(2025, 3, 30, 1, 0)),
        (QuietHours.parse("23:00-02:30 Europe/Paris"), utc(2025, 3, 30, 1, 0), None),
        # An end the autumn hour repeats: the first 02:30 (CEST) ends it; the second 02:00-02:30 is outside.
        (QuietHours.parse("23:00-02:30 Europe/Paris"), utc(2025, 10, 26, 0, 15), utc(2025, 10, 26, 0, 30)),
        (QuietHours.parse("23:00-02:30 Europe/Paris"), utc(2025, 10, 26, 1, 15), None),
    ],
)
def test_quiet_hours_window(window: QuietHours, moment: datetime, ends: datetime | None) -> None:
    assert window.ends_after(moment) == ends
    assert window.contains(moment) is (ends is not None)


def test_quiet_hours_refuse_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        NIGHT.contains(datetime(2025, 1, 1, 23, 0))
