"""Noise control per rule: should an alert go out now, wait for a digest, or be suppressed?

Pure, like ``feeds/schedule.py``: no I/O, no SQL, no clock reads. ``now`` is
passed in, and what the outbox knows about earlier alerts arrives as a
:class:`RecentHistory`. The store turns a :class:`Decision` into an outbox
row; delivery asks :func:`decide_due` again when a row falls due and sends the
released rows of a channel as one digest (:func:`monitor.alerts.digest.group_digest`).
Time zones and quiet hours live in :mod:`monitor.alerts.wallclock`, digest
schedules in :mod:`monitor.alerts.cron`, retries in :mod:`monitor.alerts.retry`.

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

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from monitor.alerts.cron import parse_crontab
from monitor.alerts.wallclock import QuietHours, require_aware, zone
from monitor.durations import format_duration
from monitor.errors import PolicyError

__all__ = [
    "Decision",
    "RecentHistory",
    "RulePolicy",
    "decide",
    "decide_due",
    "next_digest_time",
]

HOUR = timedelta(hours=1)


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
        tz = zone(self.digest_timezone, "digest timezone")
        if self.digest_cron is not None:
            object.__setattr__(self, "_trigger", parse_crontab(self.digest_cron, tz))

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
    require_aware(now)
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
    require_aware(now)
    if not held and policy.mode == "digest":
        return _hold_for_digest(policy, now)
    quiet = _quiet_hold(policy, now)
    if quiet is not None:
        return quiet
    return Decision.send()


def next_digest_time(policy: RulePolicy, now: datetime) -> datetime | None:
    """The next fire time (UTC) of the rule's digest schedule at or after ``now``; None without one."""
    require_aware(now)
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
        return f"duplicate: story already alerted {format_duration(ago)} ago"
    if ago < policy.cooldown:
        return f"cooldown ({format_duration(policy.cooldown)}): story alerted {format_duration(ago)} ago"
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
