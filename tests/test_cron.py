"""Digest schedules: crontab text means what cron(5) means, or a PolicyError says why not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.cron import parse_crontab
from monitor.errors import PolicyError


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def fires(schedule: str, after: datetime, count: int, zone: str = "UTC") -> list[datetime]:
    trigger = parse_crontab(schedule, zone)
    times: list[datetime] = []
    for _ in range(count):
        fire = trigger.get_next_fire_time(None, after)
        times.append(fire.astimezone(UTC))
        after = fire + timedelta(seconds=1)
    return times


# 2025-06-02 is a Monday.
@pytest.mark.parametrize(
    ("schedule", "weekdays"),
    [
        ("0 8 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]),  # APScheduler 3 alone: Tue-Sat
        ("0 8 * * 0", ["Sun", "Sun", "Sun", "Sun", "Sun", "Sun"]),
        ("0 8 * * 7", ["Sun", "Sun", "Sun", "Sun", "Sun", "Sun"]),
        ("0 8 * * 5-7", ["Fri", "Sat", "Sun", "Fri", "Sat", "Sun"]),
        ("0 8 * * fri-sun", ["Fri", "Sat", "Sun", "Fri", "Sat", "Sun"]),
        ("0 8 * * */2", ["Tue", "Thu", "Sat", "Sun", "Tue", "Thu"]),  # 0,2,4,6 from Sunday
        ("0 8 * * MON,wed", ["Mon", "Wed", "Mon", "Wed", "Mon", "Wed"]),
        ("@weekly", ["Sun", "Sun", "Sun", "Sun", "Sun", "Sun"]),
    ],
)
def test_crontab_weekdays_mean_what_cron_means(schedule: str, weekdays: list[str]) -> None:
    times = fires(schedule, utc(2025, 6, 2, 0, 0), 6)
    assert [moment.strftime("%a") for moment in times] == weekdays


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 8 * *", "expected 5 fields"),
        ("0 8 * * * *", "expected 5 fields"),
        ("61 8 * * *", "higher than the maximum"),
        ("0 8 * * 8", "day of week '8' is not 0-7 or sun-sat"),
        ("0 8 * * 5-1", "runs backwards"),
        ("0 8 * * 1/2", "a step needs a range"),
        ("0 8 * * */0", "must be a positive number"),
        ("0 8 1 * 1", "not both"),
        ("0 0 30 2 *", "never fires"),
        ("@fortnightly", "expected 5 fields"),
    ],
)
def test_crontab_errors_say_what_is_wrong(schedule: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_crontab(schedule)
