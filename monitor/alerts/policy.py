"""Noise control per rule: should an alert go out now, wait for a digest, or be suppressed?

Pure, like ``feeds/schedule.py``: no I/O, no SQL, no clock reads. ``now`` is
passed in, randomness comes from a passed ``random.Random``, and what the outbox
knows about earlier alerts arrives as a :class:`RecentHistory`. The store turns
a :class:`Decision` into an outbox row; delivery asks :func:`decide_due` again
when a row falls due and sends the released rows of a channel as one digest
(:func:`group_digest`).

Nothing is dropped: "hold" and "suppress" are both stored with their reason, so
``alerts list`` can show why an alert did not go out (yet).

Order of the checks in :func:`decide`, first match wins:

1. cooldown (suppress) -- a repeat of a story the user just got is noise
   whenever it would arrive; holding it would only postpone the noise into the
   next digest. Checked against ``now``; a held alert only goes out later, so
   the gap to the previous alert of its story can only grow.
2. digest mode (hold until the next cron fire time) -- the rule's own choice
   of delivery; nothing of a digest rule is ever sent on its own.
3. quiet hours (hold until they end) -- a time-of-day filter on instant alerts.
   They also push back every other release that would fall inside them (a
   03:00 digest goes out when the quiet hours end), because a digest is a
   notification too.
4. max_per_hour (hold for the next digest) -- a rate limit only means something
   for messages that would go out now, so it comes last: an alert already held
   by 2 or 3 is not sent now and must not use up the hour's budget.
"""

from __future__ import annotations

import email.utils
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

from monitor.errors import MonitorError

__all__ = [
    "Decision",
    "Digest",
    "DigestEntry",
    "DigestSection",
    "PolicyError",
    "QuietHours",
    "RecentHistory",
    "RulePolicy",
    "decide",
    "decide_due",
    "give_up",
    "group_digest",
    "next_digest_time",
    "parse_crontab",
    "parse_retry_after",
    "retry_delay",
]

HOUR = timedelta(hours=1)

# A Retry-After beyond this is treated as this (about 31 years): timedelta and
# datetime overflow long before a hostile header's value would, and give_up()
# marks such an alert dead anyway.
_LONGEST_WAIT_SECONDS = 1e9


class PolicyError(MonitorError, ValueError):
    """A noise-control setting (quiet hours, digest schedule, limits) is invalid."""


# --- time zones and wall clocks --------------------------------------------------


def _zone(name: str, what: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"{what}: unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)"
        ) from None


def _require_aware(moment: datetime, name: str = "now") -> None:
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
        return cls(_clock(found["start"], where), _clock(found["end"], where), _zone(found["zone"], where))

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
        _require_aware(moment, "moment")
        local_day = moment.astimezone(self.tz).date()
        # A window that crosses midnight and contains moment may have started the day before.
        for day in (local_day - timedelta(days=1), local_day):
            begins = _first_instant(day, self.start, self.tz)
            end_day = day + timedelta(days=1) if self.crosses_midnight else day
            ends = _first_instant(end_day, self.end, self.tz)
            if begins <= moment < ends:
                return ends
        return None


# --- digest schedules -------------------------------------------------------------

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
    tz = timezone if isinstance(timezone, ZoneInfo) else _zone(timezone, where)
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


# --- the policy of one rule ---------------------------------------------------------


@dataclass(frozen=True)
class RulePolicy:
    """How one rule's alerts reach a channel. The defaults mean: every alert at once.

    ``digest_cron`` is the rule's digest schedule (crontab text, read in
    ``digest_timezone``). A digest rule needs one; an instant rule may have one
    too, and then its ``max_per_hour`` overflow waits for that digest.
    """

    mode: Literal["instant", "digest"] = "instant"
    digest_cron: str | None = None
    digest_timezone: str = "UTC"
    cooldown: timedelta | None = None
    max_per_hour: int | None = None
    quiet_hours: QuietHours | None = None
    # Built once from digest_cron so that a bad schedule fails when the rules load.
    _trigger: CronTrigger | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in ("instant", "digest"):
            raise PolicyError(f"mode {self.mode!r}: expected 'instant' or 'digest'")
        if self.mode == "digest" and self.digest_cron is None:
            raise PolicyError("mode: digest needs a digest schedule (crontab text, for example '0 8 * * *')")
        if self.cooldown is not None and self.cooldown <= timedelta(0):
            raise PolicyError(f"cooldown must be positive, got {self.cooldown}")
        if self.max_per_hour is not None and self.max_per_hour < 1:
            raise PolicyError(f"max_per_hour must be at least 1, got {self.max_per_hour}")
        zone = _zone(self.digest_timezone, "digest timezone")
        if self.digest_cron is not None:
            object.__setattr__(self, "_trigger", parse_crontab(self.digest_cron, zone))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.digest_timezone)


@dataclass(frozen=True)
class RecentHistory:
    """What the outbox knows that a decision needs (the store computes it).

    ``instant_last_hour`` counts this rule's alerts on this channel that were let
    through for instant delivery (status pending, sent or dead; not held, not
    suppressed) and created in the hour before now. Counting admissions rather
    than completed sends is what stops a burst that arrives in one poll.
    ``oldest_instant_last_hour`` is the oldest of those: the hour window frees
    up an hour after it.

    ``last_alert_for_story`` is when this rule last alerted this story on this
    channel: the sent time of a sent alert, or the creation time of one still
    pending or held. Suppressed and dead alerts do not count; otherwise a story
    that keeps coming back would extend its own cooldown forever.
    """

    instant_last_hour: int = 0
    oldest_instant_last_hour: datetime | None = None
    last_alert_for_story: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with an alert. ``reason`` is shown by ``alerts list``.

    send: deliver now (a pending row, or a released held row as part of its channel's digest).
    hold: keep until ``release_at``, then deliver as part of a digest.
    suppress: never deliver; the row is kept with the reason.
    """

    action: Literal["send", "hold", "suppress"]
    reason: str | None = None
    release_at: datetime | None = None

    @classmethod
    def send(cls) -> Decision:
        return cls("send")

    @classmethod
    def hold(cls, reason: str, release_at: datetime) -> Decision:
        return cls("hold", reason, release_at.astimezone(UTC))

    @classmethod
    def suppress(cls, reason: str) -> Decision:
        return cls("suppress", reason)


# --- deciding ------------------------------------------------------------------------


def decide(policy: RulePolicy, now: datetime, history: RecentHistory) -> Decision:
    """The fate of a new outbox row (see the module docstring for the order of checks)."""
    _require_aware(now)
    repeat = _repeat_reason(policy, now, history)
    if repeat is not None:
        return Decision.suppress(repeat)
    if policy.mode == "digest":
        return _hold_for_digest(policy, now)
    quiet = _quiet_hold(policy, now)
    if quiet is not None:
        return quiet
    if policy.max_per_hour is not None and history.instant_last_hour >= policy.max_per_hour:
        return _hold_overflow(policy, now, history)
    return Decision.send()


def decide_due(policy: RulePolicy, now: datetime, *, held: bool) -> Decision:
    """The fate of an outbox row whose time has come, under the rules in force now.

    ``held`` is True for a held row whose release time has come: its digest goes
    out unless quiet hours (perhaps configured since) cover ``now``. A pending row
    (first attempt or a retry) goes out unless the rule has become a digest rule
    or quiet hours cover ``now``: a retry should not wake anyone at 3 a.m.

    Cooldown and max_per_hour are not checked again: they ruled on this row
    when it was created, and the row would now count against itself.
    """
    _require_aware(now)
    if not held and policy.mode == "digest":
        return _hold_for_digest(policy, now)
    quiet = _quiet_hold(policy, now)
    if quiet is not None:
        return quiet
    return Decision.send()


def next_digest_time(policy: RulePolicy, now: datetime) -> datetime | None:
    """The next fire time (UTC) of the rule's digest schedule at or after ``now``; None without one."""
    _require_aware(now)
    if policy._trigger is None:
        return None
    fire = policy._trigger.get_next_fire_time(None, now)
    return None if fire is None else fire.astimezone(UTC)


def _repeat_reason(policy: RulePolicy, now: datetime, history: RecentHistory) -> str | None:
    last = history.last_alert_for_story
    if last is None:
        return None
    ago = max(now - last, timedelta(0))  # a clock step back must not make "-3 min ago"
    if policy.cooldown is None:
        # Without a cooldown a story alerts once per rule and channel (DESIGN: delivery semantics).
        return f"duplicate: story already alerted {_human(ago)} ago"
    if ago < policy.cooldown:
        return f"cooldown ({_human(policy.cooldown)}): story alerted {_human(ago)} ago"
    return None


def _quiet_hold(policy: RulePolicy, now: datetime) -> Decision | None:
    if policy.quiet_hours is None:
        return None
    ends = policy.quiet_hours.ends_after(now)
    if ends is None:
        return None
    local_end = ends.astimezone(policy.quiet_hours.tz)
    return Decision.hold(f"quiet hours until {local_end:%H:%M} {policy.quiet_hours.tz.key}", ends)


def _after_quiet_hours(policy: RulePolicy, moment: datetime) -> datetime:
    """``moment``, or the end of the quiet hours that cover it."""
    if policy.quiet_hours is None:
        return moment
    return policy.quiet_hours.ends_after(moment) or moment


def _hold_for_digest(policy: RulePolicy, now: datetime) -> Decision:
    fire = next_digest_time(policy, now)
    if fire is None:  # parse_crontab refuses schedules that never fire; keep the alert moving regardless
        return Decision.send()
    release = _after_quiet_hours(policy, fire)
    reason = f"digest at {_when(release, now, policy.zone)}"
    if release != fire:
        reason += f" (the {_when(fire, now, policy.zone)} digest falls in quiet hours)"
    return Decision.hold(reason, release)


def _hold_overflow(policy: RulePolicy, now: datetime, history: RecentHistory) -> Decision:
    """Hold an alert over max_per_hour for the next digest.

    Without a digest schedule, the next digest is when the hour window frees up
    (an hour after the oldest alert counted in it): every alert held in the
    meantime goes out then as one message, and instant alerts resume.
    """
    fire = next_digest_time(policy, now)
    if fire is None:
        oldest = history.oldest_instant_last_hour
        fire = max(oldest + HOUR, now) if oldest is not None else now + HOUR
    release = _after_quiet_hours(policy, fire)
    return Decision.hold(
        f"over max_per_hour ({policy.max_per_hour}): in the digest at {_when(release, now, policy.zone)}",
        release,
    )


def _when(moment: datetime, now: datetime, zone: ZoneInfo) -> str:
    """A release time for people: "08:00 UTC", with the date when it is a day or more away."""
    local = moment.astimezone(zone)
    text = f"{local:%H:%M}" if moment - now < timedelta(days=1) else f"{local:%Y-%m-%d %H:%M}"
    return f"{text} {zone.key}"


def _human(delta: timedelta) -> str:
    """A duration for people: "45 s", "12 min", "1 h 30 min", "2 d"."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    days, rest = divmod(seconds // 60, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{value} {unit}" for value, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if value]
    return " ".join(parts)


# --- retries -------------------------------------------------------------------------


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


_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A Retry-After header as seconds to wait from ``now`` (never negative); None if absent or unreadable.

    Delta-seconds ("120"; fractions are accepted, some receivers send them) or an
    HTTP-date. For an HTTP-date, pass the response's Date header as ``now`` when
    there is one, so a skewed local clock does not distort the wait.
    """
    _require_aware(now)
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, per RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


# --- digests -------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestEntry:
    """One story in a digest; ``alert_id`` is the outbox row it settles."""

    alert_id: int
    rule: str
    title: str
    link: str | None
    feed: str
    outlets: tuple[str, ...] = ()
    published_at: datetime | None = None


@dataclass(frozen=True)
class DigestSection:
    """The stories of one rule in a digest, in the order they were given."""

    rule: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class Digest:
    """One message for one channel: a section per rule."""

    channel: str
    sections: tuple[DigestSection, ...]

    @property
    def alert_ids(self) -> tuple[int, ...]:
        return tuple(entry.alert_id for section in self.sections for entry in section.entries)

    @property
    def story_count(self) -> int:
        return sum(len(section.entries) for section in self.sections)


def group_digest(entries: Iterable[tuple[str, DigestEntry]]) -> dict[str, Digest]:
    """The released alerts as one digest per channel, keyed by channel.

    Channels, rule sections and the stories in each keep the order of
    ``entries`` (the store's: oldest first). A story that two rules matched
    appears under both, since each section says why it is there.
    """
    by_channel: dict[str, dict[str, list[DigestEntry]]] = {}
    for channel, entry in entries:
        by_channel.setdefault(channel, {}).setdefault(entry.rule, []).append(entry)
    return {
        channel: Digest(
            channel,
            tuple(DigestSection(rule, tuple(stories)) for rule, stories in rules.items()),
        )
        for channel, rules in by_channel.items()
    }
