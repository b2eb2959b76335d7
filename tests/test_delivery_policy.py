"""Pacing and stories through the real store, the real delivery worker and a real
webhook receiver, with an injected clock: no real waiting."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from conftest import OTHER_TEXT, REWRITE_TEXT, WIRE_TEXT, write_config

from monitor.alerts.deliver import Deliverer
from monitor.assembly import load_setup
from monitor.decide import Analysed, story_info, summarise
from monitor.items import FeedSpec, Item
from monitor.pipeline import record_poll
from monitor.store import FeedWrite, open_storage

WIRE, REWRITE, OTHER = WIRE_TEXT, REWRITE_TEXT, OTHER_TEXT


class Clock:
    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class Harness:
    """A store, a config with the given rules, a deliverer on a webhook, and a clock."""

    def __init__(self, tmp_path, webhook, rules, start: datetime):
        directory = write_config(
            tmp_path / "config",
            feeds=[],
            channels={"hook": {"url": webhook.json_url("/hook")}},
            rules=rules,
            delivery={"retry_initial": "1m", "retry_max": "1h"},
        )
        self.setup = load_setup(directory)
        self.clock = Clock(start)
        self.store = open_storage(tmp_path / "state.db")
        self.store.sync_feeds([FeedSpec("reuters", "http://127.0.0.1/r"), FeedSpec("ap", "http://127.0.0.1/a")], start)
        self.feeds = {feed.name: feed.id for feed in self.store.feeds()}
        self.deliverer = Deliverer(self.store, self.setup, self.clock)
        self.webhook = webhook
        self.serial = 0

    def arrive(self, feed: str, title: str, text: str, rule: str, link: str | None = None) -> dict[str, int]:
        """An item matching ``rule`` arrives on ``feed`` now."""
        self.serial += 1
        item = Item(guid=f"{feed}-{self.serial}", link=link or f"https://{feed}.example.org/{self.serial}", title=title, text=text)
        now = self.clock.now
        feed_id = self.feeds[feed]
        written = FeedWrite(feed_id, now, now + timedelta(minutes=10), "test", None, None, None)
        analysed = Analysed(item, matches=((rule, ()),), story=story_info(item))
        return summarise(record_poll(self.store, self.setup, feed_id, [analysed], now=now, feed=written))

    def deliver_at(self, moment: datetime) -> list[dict]:
        self.clock.now = moment
        before = len(self.webhook.requests)
        asyncio.run(self.deliverer.deliver_due())
        return [r.json for r in self.webhook.requests[before:]]

    def alerts(self) -> list[dict]:
        return [alert.to_dict() for alert in reversed(self.store.list_alerts())]


@pytest.fixture
def harness(tmp_path, webhook):
    made: list[Harness] = []

    def make(rules, start):
        made.append(Harness(tmp_path, webhook, rules, start))
        return made[-1]

    yield make
    for h in made:
        h.store.close()


def rule(**policy):
    return {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"], **policy}


def test_one_story_on_two_feeds_alerts_once_and_lists_both_outlets(harness):
    h = harness([rule()], datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    assert h.arrive("reuters", "Putin and Xi discuss Ukraine by phone", WIRE, "xi-putin")["alerts"] == 1
    h.clock.now += timedelta(minutes=20)
    copy = h.arrive("ap", "Xi, Putin hold call on Ukraine, trade", REWRITE, "xi-putin")
    assert copy == {"items": 1, "matches": 1, "alerts": 0, "suppressed": 1}
    other = h.arrive("ap", "Putin signs budget raising military spending", OTHER + " Xi was not mentioned.", "xi-putin")
    assert other["alerts"] == 1  # same people, same day, another story

    [first, duplicate, budget] = h.alerts()
    assert first["outlets"] == ["reuters", "ap"] and first["status"] == "pending"
    assert duplicate["status"] == "suppressed" and "already alerted" in duplicate["reason"]
    assert budget["story_id"] != first["story_id"]
    sent = h.deliver_at(h.clock.now)
    assert len(sent) == 2
    [call] = [m for m in sent if "discuss Ukraine" in m["title"]]
    assert "Also on: ap" in call["message"]


def test_a_copy_with_the_same_link_joins_its_story(harness):
    h = harness([rule()], datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    h.arrive("reuters", "Xi and Putin talk", "Short.", "xi-putin", link="https://www.example.org/a/1?utm_source=rss")
    copy = h.arrive("ap", "Putin, Xi talk", "Other short text.", "xi-putin", link="https://example.org/a/1")
    assert copy["suppressed"] == 1


def test_digest_rules_hold_until_the_schedule_and_send_one_message(harness):
    h = harness([rule(mode="digest", schedule="0 8 * * *")], datetime(2026, 11, 27, 6, 0, tzinfo=UTC))
    h.arrive("reuters", "Putin and Xi discuss Ukraine by phone", WIRE, "xi-putin")
    h.arrive("ap", "Xi Putin budget", OTHER + " Xi was briefed.", "xi-putin")
    assert [a["status"] for a in h.alerts()] == ["held", "held"]
    assert all("digest at 08:00" in a["reason"] for a in h.alerts())
    assert h.deliver_at(datetime(2026, 11, 27, 7, 59, tzinfo=UTC)) == []
    [digest] = h.deliver_at(datetime(2026, 11, 27, 8, 0, tzinfo=UTC))
    assert digest["title"].startswith("news-monitor digest: 2 stories")
    assert "Putin and Xi discuss Ukraine by phone" in digest["message"] and "Xi Putin budget" in digest["message"]
    assert [a["status"] for a in h.alerts()] == ["sent", "sent"]


def test_quiet_hours_hold_alerts_and_release_them_as_one_digest(harness):
    # 23:30 in Paris (UTC+1 in November); the quiet hours end at 07:00 Paris, 06:00 UTC.
    h = harness([rule(quiet_hours="22:00-07:00 Europe/Paris")], datetime(2026, 11, 27, 22, 30, tzinfo=UTC))
    h.arrive("reuters", "Putin and Xi discuss Ukraine by phone", WIRE, "xi-putin")
    h.clock.now += timedelta(hours=2)
    h.arrive("ap", "Xi Putin budget", OTHER + " Xi was briefed.", "xi-putin")
    assert all(a["status"] == "held" and "quiet hours" in a["reason"] for a in h.alerts())
    assert h.deliver_at(datetime(2026, 11, 28, 5, 59, tzinfo=UTC)) == []
    [digest] = h.deliver_at(datetime(2026, 11, 28, 6, 0, tzinfo=UTC))
    assert "2 stories" in digest["title"]
    # Outside quiet hours an alert goes out on its own.
    h.clock.now = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    h.arrive("reuters", "Xi and Putin again", "Xi and Putin met again in Kazan for talks on energy and grain exports.", "xi-putin")
    [single] = h.deliver_at(h.clock.now)
    assert single["title"] == "Xi and Putin again [xi-putin]"


def test_over_max_per_hour_waits_for_the_next_digest_nothing_is_dropped(harness):
    start = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    h = harness([rule(max_per_hour=2)], start)
    for n in range(4):
        h.arrive("reuters", f"Xi and Putin update {n}", f"Update {n}: Xi and Putin spoke about topic {n}.", "xi-putin")
    assert [a["status"] for a in h.alerts()] == ["pending", "pending", "held", "held"]
    assert "max_per_hour" in h.alerts()[2]["reason"]
    assert len(h.deliver_at(start)) == 2
    assert h.deliver_at(start + timedelta(minutes=59)) == []
    [digest] = h.deliver_at(start + timedelta(hours=1))
    assert "Xi and Putin update 2" in digest["message"] and "Xi and Putin update 3" in digest["message"]
    assert [a["status"] for a in h.alerts()] == ["sent"] * 4


def test_cooldown_lets_a_story_alert_again_only_after_the_window(harness):
    start = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    h = harness([rule(cooldown="2h")], start)
    h.arrive("reuters", "Putin and Xi discuss Ukraine by phone", WIRE, "xi-putin")
    h.deliver_at(start)
    h.clock.now = start + timedelta(hours=1)
    assert h.arrive("ap", "Xi, Putin hold call", REWRITE, "xi-putin")["suppressed"] == 1
    assert "cooldown" in h.alerts()[-1]["reason"]
    h.clock.now = start + timedelta(hours=3)
    assert h.arrive("ap", "Xi, Putin call: more details", REWRITE + " More details emerged.", "xi-putin")["alerts"] == 1
