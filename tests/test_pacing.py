"""Noise control per rule: quiet hours, digests, cooldown, max_per_hour.

The pacing is pure, so the clock is whatever ``now`` a test passes in; the
scenario tests drive a small in-memory outbox with a clock they step by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from conftest import NIGHT as NIGHT_TEXT
from conftest import paris, utc

from monitor.alerts.digest import DigestEntry, group_digest
from monitor.alerts.pacing import (
    Decision,
    RecentHistory,
    RulePolicy,
    decide,
    decide_due,
    next_digest_time,
)
from monitor.alerts.wallclock import QuietHours
from monitor.errors import PolicyError

NIGHT = QuietHours.parse(NIGHT_TEXT)


# --- digest times and settings --------------------------------------------------------


def test_digest_time_follows_the_local_clock_across_dst() -> None:
    policy = RulePolicy(mode="digest", digest_cron="0 8 * * *", digest_timezone="Europe/Paris")
    assert next_digest_time(policy, utc(2025, 3, 29, 9, 0)) == utc(2025, 3, 30, 6, 0)  # 08:00 CEST
    assert next_digest_time(policy, utc(2025, 3, 29, 6, 0)) == utc(2025, 3, 29, 7, 0)  # 08:00 CET
    assert next_digest_time(policy, utc(2025, 10, 25, 9, 0)) == utc(2025, 10, 26, 7, 0)  # 08:00 CET again


def test_digest_time_at_a_fire_time_is_that_fire_time() -> None:
    policy = RulePolicy(mode="digest", digest_cron="0 8,18 * * *")
    assert next_digest_time(policy, utc(2025, 1, 1, 8, 0)) == utc(2025, 1, 1, 8, 0)
    assert next_digest_time(policy, utc(2025, 1, 1, 8, 0, 1)) == utc(2025, 1, 1, 18, 0)


def test_no_digest_schedule_no_digest_time() -> None:
    assert next_digest_time(RulePolicy(), utc(2025, 1, 1)) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "digest"}, "needs a digest schedule"),
        ({"mode": "weekly"}, "expected 'instant' or 'digest'"),
        ({"digest_cron": "0 8 * *"}, "expected 5 fields"),
        ({"digest_cron": "0 8 * * *", "digest_timezone": "Paris"}, "unknown time zone 'Paris'"),
        ({"cooldown": timedelta(0)}, "cooldown must be positive"),
        ({"max_per_hour": 0}, "max_per_hour must be at least 1"),
    ],
)
def test_rule_policy_errors(settings: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        RulePolicy(**settings)


# --- decide: a new outbox row ---------------------------------------------------------

NOON = utc(2025, 1, 14, 12, 0)  # a Tuesday; 13:00 in Paris
LATE = paris(2025, 1, 14, 23, 0)  # inside NIGHT
NIGHT_ENDS = utc(2025, 1, 15, 6, 0)  # 07:00 CET
TWICE_A_DAY = {"digest_cron": "0 8,18 * * *"}


@dataclass(frozen=True)
class Case:
    policy: RulePolicy
    now: datetime
    history: RecentHistory
    action: str
    release_at: datetime | None = None
    reason: str | None = None


DECIDE_CASES = {
    "no noise control: send": Case(RulePolicy(), NOON, RecentHistory(), "send"),
    "digest rule: held for the next fire time": Case(
        RulePolicy(mode="digest", **TWICE_A_DAY), NOON, RecentHistory(), "hold", utc(2025, 1, 14, 18), "digest at 18:00 UTC"
    ),
    "digest rule far ahead: the date is shown": Case(
        RulePolicy(mode="digest", digest_cron="0 8 * * 1"), NOON, RecentHistory(), "hold", utc(2025, 1, 20, 8),
        "digest at 2025-01-20 08:00 UTC",
    ),
    "digest fire time in quiet hours: released when they end": Case(
        RulePolicy(mode="digest", digest_cron="0 3 * * *", quiet_hours=NIGHT), NOON, RecentHistory(), "hold",
        NIGHT_ENDS, "digest at 06:00 UTC (the 03:00 UTC digest falls in quiet hours)",
    ),
    "quiet hours: held until they end": Case(
        RulePolicy(quiet_hours=NIGHT), LATE, RecentHistory(), "hold", NIGHT_ENDS, "quiet hours until 07:00 Europe/Paris"
    ),
    "quiet hours configured, daytime: send": Case(RulePolicy(quiet_hours=NIGHT), NOON, RecentHistory(), "send"),
    "cooldown running: suppressed": Case(
        RulePolicy(cooldown=timedelta(hours=1)), NOON, RecentHistory(last_alert_for_story=NOON - timedelta(minutes=12)),
        "suppress", None, "cooldown (1 h): story alerted 12 min ago",
    ),
    "cooldown just over: send": Case(
        RulePolicy(cooldown=timedelta(hours=1)), NOON, RecentHistory(last_alert_for_story=NOON - timedelta(hours=1)), "send"
    ),
    "cooldown, a skewed clock: still suppressed": Case(
        RulePolicy(cooldown=timedelta(hours=1)), NOON, RecentHistory(last_alert_for_story=NOON + timedelta(minutes=5)),
        "suppress", None, "story alerted 0 s ago",
    ),
    "no cooldown, story alerted before: once per story": Case(
        RulePolicy(), NOON, RecentHistory(last_alert_for_story=NOON - timedelta(days=3, hours=2)),
        "suppress", None, "duplicate: story already alerted 3 d 2 h ago",
    ),
    "cooldown beats digest mode": Case(
        RulePolicy(mode="digest", cooldown=timedelta(hours=6), **TWICE_A_DAY), NOON,
        RecentHistory(last_alert_for_story=NOON - timedelta(hours=2)), "suppress", None, "cooldown (6 h)",
    ),
    "cooldown beats quiet hours": Case(
        RulePolicy(cooldown=timedelta(hours=6), quiet_hours=NIGHT), LATE,
        RecentHistory(last_alert_for_story=LATE - timedelta(minutes=30)), "suppress", None, "cooldown (6 h)",
    ),
    "under max_per_hour: send": Case(RulePolicy(max_per_hour=10), NOON, RecentHistory(instant_last_hour=9), "send"),
    "at max_per_hour, digest schedule: held for the next digest": Case(
        RulePolicy(max_per_hour=10, **TWICE_A_DAY), NOON,
        RecentHistory(instant_last_hour=10, oldest_instant_last_hour=NOON - timedelta(minutes=40)),
        "hold", utc(2025, 1, 14, 18), "over max_per_hour (10): in the digest at 18:00 UTC",
    ),
    "at max_per_hour, no schedule: held until the hour window frees": Case(
        RulePolicy(max_per_hour=10), NOON,
        RecentHistory(instant_last_hour=10, oldest_instant_last_hour=NOON - timedelta(minutes=40)),
        "hold", NOON + timedelta(minutes=20), "over max_per_hour (10): in the digest at 12:20 UTC",
    ),
    "at max_per_hour, oldest unknown: held an hour": Case(
        RulePolicy(max_per_hour=3), NOON, RecentHistory(instant_last_hour=5), "hold", NOON + timedelta(hours=1)
    ),
    "overflow release in quiet hours: released when they end": Case(
        RulePolicy(max_per_hour=2, quiet_hours=NIGHT), paris(2025, 1, 14, 21, 50),
        RecentHistory(instant_last_hour=2, oldest_instant_last_hour=paris(2025, 1, 14, 21, 30)),
        "hold", NIGHT_ENDS, "over max_per_hour (2)",
    ),
    "quiet hours beat max_per_hour": Case(
        RulePolicy(max_per_hour=1, quiet_hours=NIGHT), LATE,
        RecentHistory(instant_last_hour=5, oldest_instant_last_hour=LATE - timedelta(minutes=50)),
        "hold", NIGHT_ENDS, "quiet hours until 07:00 Europe/Paris",
    ),
    "digest mode beats quiet hours and max_per_hour": Case(
        RulePolicy(mode="digest", max_per_hour=1, quiet_hours=NIGHT, **TWICE_A_DAY), LATE,
        RecentHistory(instant_last_hour=5), "hold", utc(2025, 1, 15, 8), "digest at 08:00 UTC",
    ),
}


@pytest.mark.parametrize("case", DECIDE_CASES.values(), ids=DECIDE_CASES.keys())
def test_decide(case: Case) -> None:
    decision = decide(case.policy, case.now, case.history)
    assert decision.action == case.action
    assert decision.release_at == case.release_at
    if case.reason is not None:
        assert decision.reason is not None and case.reason in decision.reason
    if case.action == "send":
        assert decision.reason is None
    else:
        assert decision.reason  # held and suppressed alerts always say why


def test_decide_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(RulePolicy(), datetime(2025, 1, 1, 12, 0), RecentHistory())


def test_release_times_are_utc() -> None:
    decision = decide(RulePolicy(quiet_hours=NIGHT), LATE, RecentHistory())
    assert decision.release_at is not None and decision.release_at.tzinfo is UTC


# --- decide_due: a row whose time has come -------------------------------------------

DUE_CASES = {
    "pending, plain: send": (RulePolicy(), NOON, False, Decision.send()),
    "pending retry in quiet hours: held": (
        RulePolicy(quiet_hours=NIGHT), LATE, False, Decision.hold("quiet hours until 07:00 Europe/Paris", NIGHT_ENDS)
    ),
    "pending, rule became a digest rule: held": (
        RulePolicy(mode="digest", **TWICE_A_DAY), NOON, False, Decision.hold("digest at 18:00 UTC", utc(2025, 1, 14, 18))
    ),
    "held, digest fire time reached: send": (RulePolicy(mode="digest", **TWICE_A_DAY), utc(2025, 1, 14, 18), True, Decision.send()),
    "held, quiet hours ended: send": (RulePolicy(quiet_hours=NIGHT), NIGHT_ENDS, True, Decision.send()),
    "held, quiet hours configured since: held again": (
        RulePolicy(mode="digest", quiet_hours=NIGHT, **TWICE_A_DAY), LATE, True,
        Decision.hold("quiet hours until 07:00 Europe/Paris", NIGHT_ENDS),
    ),
    "held overflow, cap still full: send (a digest is one message)": (RulePolicy(max_per_hour=1), NOON, True, Decision.send()),
}


@pytest.mark.parametrize(("policy", "now", "held", "expected"), DUE_CASES.values(), ids=DUE_CASES.keys())
def test_decide_due(policy: RulePolicy, now: datetime, held: bool, expected: Decision) -> None:
    assert decide_due(policy, now, held=held) == expected


# --- scenarios: an in-memory outbox driven by a hand-stepped clock -------------------


@dataclass
class Row:
    id: int
    rule: str
    channel: str
    story: int
    created_at: datetime
    status: str  # pending | held | suppressed | sent
    release_at: datetime | None
    reason: str | None
    digest: bool = False
    sent_at: datetime | None = None


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


class Outbox:
    """What decide.py, the store and deliver.py do with the pacing, minus SQL and apprise."""

    def __init__(self, policies: dict[str, RulePolicy]) -> None:
        self.policies = policies
        self.rows: list[Row] = []
        self.messages: list[tuple[datetime, str, tuple[int, ...]]] = []  # (when, channel, alert ids)

    def history(self, rule: str, channel: str, story: int, now: datetime) -> RecentHistory:
        mine = [row for row in self.rows if (row.rule, row.channel) == (rule, channel)]
        instant = [
            row.created_at
            for row in mine
            if row.status in ("pending", "sent") and not row.digest and row.created_at > now - timedelta(hours=1)
        ]
        alerted = [row.sent_at or row.created_at for row in mine if row.story == story and row.status in ("pending", "held", "sent")]
        return RecentHistory(len(instant), min(instant, default=None), max(alerted, default=None))

    def add(self, rule: str, channel: str, story: int, now: datetime) -> Row:
        decision = decide(self.policies[rule], now, self.history(rule, channel, story, now))
        status = {"send": "pending", "hold": "held", "suppress": "suppressed"}[decision.action]
        row = Row(len(self.rows) + 1, rule, channel, story, now, status, decision.release_at, decision.reason, status == "held")
        self.rows.append(row)
        return row

    def deliver(self, now: datetime) -> None:
        for row in [r for r in self.rows if r.status == "pending"]:
            decision = decide_due(self.policies[row.rule], now, held=False)
            if decision.action == "send":
                row.status, row.sent_at = "sent", now
                self.messages.append((now, row.channel, (row.id,)))
            else:  # from now on it waits for a digest like any held row
                row.status, row.digest, row.release_at, row.reason = "held", True, decision.release_at, decision.reason
        released = []
        for row in [r for r in self.rows if r.status == "held" and r.release_at <= now]:
            decision = decide_due(self.policies[row.rule], now, held=True)
            if decision.action == "send":
                released.append((row.channel, DigestEntry(row.id, row.rule, f"story {row.story}", None, "wire")))
            else:
                row.release_at, row.reason = decision.release_at, decision.reason
        for digest in group_digest(released).values():
            for row in self.rows:
                if row.id in digest.alert_ids:
                    row.status, row.sent_at = "sent", now
            self.messages.append((now, digest.channel, digest.alert_ids))


def test_night_alerts_wait_for_the_end_of_quiet_hours_and_go_as_one_digest_per_channel() -> None:
    outbox = Outbox({"xi-putin": RulePolicy(quiet_hours=NIGHT), "ukraine": RulePolicy(quiet_hours=NIGHT)})
    clock = Clock(paris(2025, 3, 29, 21, 30))  # the night the clocks go forward
    outbox.add("xi-putin", "newsroom", 1, clock.now)
    outbox.deliver(clock.now)
    assert outbox.messages == [(clock.now, "newsroom", (1,))]

    for story in range(2, 8):  # one new story every 40 minutes from 22:10 until 01:30
        clock.advance(timedelta(minutes=40))
        outbox.add("xi-putin" if story % 2 else "ukraine", "newsroom" if story < 6 else "me", story, clock.now)
        outbox.deliver(clock.now)
    assert len(outbox.messages) == 1
    assert {row.reason for row in outbox.rows[1:]} == {"quiet hours until 07:00 Europe/Paris"}

    while clock.now < paris(2025, 3, 30, 6, 55):
        outbox.deliver(clock.advance(timedelta(minutes=5)))
    assert len(outbox.messages) == 1  # 06:55: still quiet

    outbox.deliver(clock.advance(timedelta(minutes=5)))  # 07:00 CEST, 05:00 UTC
    assert clock.now == utc(2025, 3, 30, 5, 0)
    assert outbox.messages[1:] == [(clock.now, "newsroom", (2, 4, 3, 5)), (clock.now, "me", (6, 7))]
    assert all(row.status == "sent" for row in outbox.rows)


def test_an_alert_still_pending_when_quiet_hours_begin_waits_for_their_end() -> None:
    outbox = Outbox({"wire": RulePolicy(quiet_hours=NIGHT)})
    clock = Clock(paris(2025, 1, 14, 21, 59))
    assert outbox.add("wire", "me", 1, clock.now).status == "pending"
    outbox.deliver(clock.advance(timedelta(minutes=1)))  # the delivery tick comes at 22:00
    assert (outbox.rows[0].status, outbox.rows[0].reason) == ("held", "quiet hours until 07:00 Europe/Paris")
    outbox.deliver(clock.advance(timedelta(hours=9)))
    assert outbox.messages == [(NIGHT_ENDS, "me", (1,))]


def test_a_burst_over_max_per_hour_goes_out_as_one_digest_when_the_hour_frees() -> None:
    outbox = Outbox({"wire": RulePolicy(max_per_hour=10)})
    clock = Clock(NOON)
    for story in range(1, 13):  # twelve matches in one poll
        outbox.add("wire", "newsroom", story, clock.now)
    outbox.deliver(clock.now)
    assert len(outbox.messages) == 10
    held = [row for row in outbox.rows if row.status == "held"]
    assert [row.story for row in held] == [11, 12]
    assert {row.reason for row in held} == {"over max_per_hour (10): in the digest at 13:00 UTC"}

    outbox.add("wire", "newsroom", 13, clock.advance(timedelta(minutes=30)))
    assert outbox.rows[-1].release_at == NOON + timedelta(hours=1)  # joins the same digest

    while clock.now < NOON + timedelta(hours=1):
        outbox.deliver(clock.advance(timedelta(minutes=5)))
    assert outbox.messages[-1] == (NOON + timedelta(hours=1), "newsroom", (11, 12, 13))
    assert outbox.add("wire", "newsroom", 14, clock.now).status == "pending"  # instant alerts resume


def test_cooldown_suppresses_repeats_keeps_them_and_lets_the_story_back_after_the_window() -> None:
    outbox = Outbox({"wire": RulePolicy(cooldown=timedelta(hours=1))})
    clock = Clock(NOON)
    outbox.add("wire", "me", 7, clock.now)
    outbox.deliver(clock.now)
    for _ in range(3):  # the story comes back every 20 minutes
        outbox.add("wire", "me", 7, clock.advance(timedelta(minutes=20)))
    statuses = [(row.status, row.reason) for row in outbox.rows]
    assert statuses == [
        ("sent", None),
        ("suppressed", "cooldown (1 h): story alerted 20 min ago"),
        ("suppressed", "cooldown (1 h): story alerted 40 min ago"),
        ("pending", None),  # an hour after the last alert sent, not after the last suppressed copy
    ]
    assert outbox.add("wire", "me", 8, clock.now).status == "pending"  # another story is not affected


def test_a_digest_rule_sends_one_message_per_channel_at_each_fire_time() -> None:
    outbox = Outbox({"ukraine": RulePolicy(mode="digest", digest_cron="0 8,18 * * *", digest_timezone="Europe/Paris")})
    clock = Clock(paris(2025, 1, 14, 9, 0))
    for story in range(1, 5):
        outbox.add("ukraine", "me", story, clock.advance(timedelta(hours=2)))  # 11:00 ... 17:00
        outbox.deliver(clock.now)
    assert outbox.messages == []
    outbox.deliver(clock.advance(timedelta(hours=1)))  # 18:00 Paris
    assert outbox.messages == [(paris(2025, 1, 14, 18, 0), "me", (1, 2, 3, 4))]
