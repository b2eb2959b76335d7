"""Time zones, wall clocks and quiet hours. Pure: every instant is passed in.

A wall clock is what a clock on the wall in some zone reads: naive, and
ambiguous or missing around DST changes. Windows of wall-clock time (quiet
hours) are turned into UTC instants before anything is compared, so that they
behave the same in the hour the clocks repeat or skip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import PolicyError

__all__ = ["QuietHours", "require_aware", "zone"]


def zone(name: str, what: str) -> ZoneInfo:
    """The IANA zone ``name``; a PolicyError naming ``what`` (the setting) when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"{what}: unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)"
        ) from None


def require_aware(moment: datetime, name: str = "now") -> None:
    """A ValueError unless ``moment`` is timezone-aware; ``name`` is how the message calls it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {moment.isoformat()}")


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    """What a wall clock in ``tz`` reads at ``instant`` (naive)."""
    return instant.astimezone(tz).replace(tzinfo=None)


def _first_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The first UTC instant at which a wall clock in ``tz`` reads ``day clock`` or later.

    A wall time that happens twice (autumn) maps to its first occurrence. One that
    never happens (skipped by the spring jump) maps to the jump itself, the moment
    the clock passes it.
    """
    wall = datetime.combine(day, clock)
    candidate = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if _wall(candidate, tz) == wall:
        return candidate
    # In the gap, fold=0 lands after the jump and fold=1 before it: bisect to the jump.
    low = int(wall.replace(tzinfo=tz, fold=1).astimezone(UTC).timestamp())
    high = int(candidate.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(datetime.fromtimestamp(middle, UTC), tz) >= wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


# --- quiet hours ------------------------------------------------------------------

_QUIET_HOURS = re.compile(r"(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})(?:\s+(?P<zone>\S+))?")


def _clock(text: str, where: str) -> time:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 23 or minutes > 59:
        raise PolicyError(f"{where}: {text} is not a time of day (00:00 to 23:59)")
    return time(hours, minutes)


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local wall-clock time, ``start`` included, ``end`` excluded.

    ``start > end`` means the window crosses midnight (22:00-07:00). The window
    follows the wall clock through DST changes, so it is an hour shorter or longer
    on those nights.
    """

    start: time
    end: time
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.start == self.end:
            raise PolicyError(
                f"quiet hours {self}: start and end are both {self.start:%H:%M}; "
                "a window must have a length (to silence a rule all day, use mode: digest)"
            )

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"22:00-07:00 Europe/Paris"``; a clear PolicyError for anything else."""
        where = f"quiet hours {text!r}"
        found = _QUIET_HOURS.fullmatch(text.strip())
        if found is None:
            raise PolicyError(f"{where}: expected 'HH:MM-HH:MM Zone', for example '22:00-07:00 Europe/Paris'")
        if found["zone"] is None:
            # The server's local zone would be a guess (and a clock read); make the user say it.
            raise PolicyError(f"{where}: add a time zone, for example '22:00-07:00 Europe/Paris' or '22:00-07:00 UTC'")
        return cls(_clock(found["start"], where), _clock(found["end"], where), zone(found["zone"], where))

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M} {self.tz.key}"

    @property
    def crosses_midnight(self) -> bool:
        return self.start > self.end

    def contains(self, moment: datetime) -> bool:
        return self.ends_after(moment) is not None

    def ends_after(self, moment: datetime) -> datetime | None:
        """The UTC end of the window that contains ``moment``; None when ``moment`` is outside.

        Windows are computed as UTC instants, not by comparing times of day, so
        ``contains`` and the end always agree, even in the hour a DST change repeats.
        """
        require_aware(moment, "moment")
        local_day = moment.astimezone(self.tz).date()
        # A window that crosses midnight and contains moment may have started the day before.
        for day in (local_day - timedelta(days=1), local_day):
            begins = _first_instant(day, self.start, self.tz)
            end_day = day + timedelta(days=1) if self.crosses_midnight else day
            ends = _first_instant(end_day, self.end, self.tz)
            if begins <= moment < ends:
                return ends
        return None
