"""Digest schedules: standard crontab text read as cron(5) means it. Pure.

The schedule is run by APScheduler 3's CronTrigger, which differs from cron in
two places that matter to users: it numbers the days of the week from Monday
0, and it fires only when both the day of month and the day of week match.
:func:`parse_crontab` translates the first and refuses the second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from monitor.alerts.wallclock import zone
from monitor.errors import PolicyError

__all__ = ["parse_crontab"]

_CRON_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

# Crontab numbering: 0 and 7 are Sunday.
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

# Any crontab that can fire at all fires within 8 years of this (29 February).
_SCHEDULE_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def _weekday(token: str, where: str) -> int:
    if token.isdigit() and int(token) <= 7:
        return int(token)
    if token in _WEEKDAYS:
        return _WEEKDAYS.index(token)
    raise PolicyError(f"{where}: day of week {token!r} is not 0-7 or sun-sat (0 and 7 are Sunday)")


def _weekday_part(part: str, where: str) -> set[int]:
    body, slash, step_text = part.partition("/")
    if slash and not (step_text.isdigit() and int(step_text) > 0):
        raise PolicyError(f"{where}: day of week step {part!r} must be a positive number")
    step = int(step_text) if slash else 1
    if body == "*":
        first, last = 0, 6
    elif "-" in body:
        low, _, high = body.partition("-")
        first, last = _weekday(low, where), _weekday(high, where)
        if last == 0 and first > 0:  # "fri-sun": Sunday as the end of a range is day 7
            last = 7
        if first > last:
            raise PolicyError(f"{where}: day of week range {part!r} runs backwards")
    elif slash:
        raise PolicyError(f"{where}: day of week {part!r}: a step needs a range or '*' before it")
    else:
        first = last = _weekday(body, where)
    return {day % 7 for day in range(first, last + 1, step)}


def _apscheduler_weekdays(text: str, where: str) -> str:
    """A crontab day-of-week field spelled out as day names for APScheduler 3.

    APScheduler 3 numbers Monday 0 and steps from Monday (its issue #286), so the
    crontab "1-5" (Monday to Friday) would mean Tuesday to Saturday there. Names
    mean the same to both.
    """
    if text == "*":
        return text
    days: set[int] = set()
    for part in text.lower().split(","):
        days |= _weekday_part(part, where)
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def parse_crontab(text: str, timezone: str | ZoneInfo = "UTC") -> CronTrigger:
    """A CronTrigger for standard crontab text ("0 8,18 * * 1-5"), or a PolicyError saying why not.

    Standard means as in crontab(5): 0 and 7 are Sunday, and the @daily-style
    macros work. Restricting both day of month and day of week is refused:
    cron fires when either matches, APScheduler only when both do.
    """
    where = f"digest schedule {text!r}"
    tz = timezone if isinstance(timezone, ZoneInfo) else zone(timezone, where)
    expression = _CRON_MACROS.get(text.strip().lower(), text)
    fields = expression.split()
    if len(fields) != 5:
        raise PolicyError(f"{where}: expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise PolicyError(f"{where}: restrict the day of month or the day of week, not both")
    weekdays = _apscheduler_weekdays(weekday, where)
    try:
        trigger = CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=tz)
    except ValueError as error:
        raise PolicyError(f"{where}: {error}") from None
    if trigger.get_next_fire_time(None, _SCHEDULE_PROBE) is None:
        raise PolicyError(f"{where}: never fires (no such date)")
    return trigger
