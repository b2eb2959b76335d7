"""Surge alerts on a real SQLite file: stored items, the real check, the outbox, with the clock passed in."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import write_config

from monitor.alerts.deliver import _alert
from monitor.assembly import Setup, load_setup
from monitor.items import Item
from monitor.pipeline import analyse, record_poll
from monitor.store import Storage, open_storage
from monitor.surges import SurgeWatch

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
WORDS = (
    "harbour budget senate orchard railway festival glacier tariff vaccine drought satellite parliament museum "
    "copper election pipeline bakery minister reactor lottery canal fishery textile embassy theatre highway "
    "monsoon refinery court library airline wheat stadium ferry subsidy mayor border census bridge tunnel"
).split()


def text(seed: int) -> str:
    """A text of its own (no two seeds read as one story)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) + str(rng.randrange(1000)) for _ in range(40))


class Desk:
    """A config with one spike rule, its database, and a way to store items at any moment."""

    def __init__(self, tmp_path: Path, config: Path | None = None, **rule: object):
        spike = {"name": "putin-surge", "spike": "Putin", "notify": ["console"], **rule}
        feeds = [{"name": f"feed{i}", "url": f"http://127.0.0.1:9/{i}"} for i in range(4)]
        self.config = config or write_config(tmp_path / "config", feeds=feeds, rules=[spike])
        self.setup: Setup = load_setup(self.config)
        self.store: Storage = open_storage(self.setup.config.settings.database)
        self.store.sync_feeds(self.setup.config.feed_specs(), T0 - timedelta(days=30))
        self.watch = SurgeWatch()
        self.n = 0

    def store_items(self, at: datetime, *titles: str, feed: str = "feed0", same_text: int | None = None) -> None:
        items = []
        for title in titles:
            self.n += 1
            seed = same_text if same_text is not None else self.n
            items.append(
                Item(guid=f"{feed}-{self.n}", link=f"https://{feed}.example/{self.n}", title=title, text=text(seed))
            )
        analysed = analyse(self.setup, items, None, feed, (), [() for _ in items])  # type: ignore[arg-type]
        record_poll(self.store, self.setup, self.store.feed(feed).id, analysed, now=at, feed=None)
        self.watch.check(self.store, self.setup, at)

    def quiet_week(self, until: datetime, every: timedelta = 8 * HOUR) -> None:
        """A Putin story every 8 hours (or ``every``), and other news, over the 8 days before ``until``."""
        moment = until - timedelta(days=8)
        while moment < until:
            self.store_items(moment, f"Putin visits town {self.n}", f"Weather report {self.n}")
            moment += every

    def burst(self, start: datetime, count: int, gap: timedelta = timedelta(minutes=6)) -> None:
        for i in range(count):
            self.store_items(start + gap * i, f"Putin news {self.n}", feed=f"feed{i % 4}")

    def surges(self) -> list:
        return [a for a in self.store.list_alerts(rule="putin-surge", limit=100)]


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    found = Desk(tmp_path)
    yield found
    found.store.close()


def test_a_burst_over_a_quiet_week_makes_exactly_one_alert(desk: Desk) -> None:
    desk.quiet_week(T0)
    assert desk.surges() == []
    desk.burst(T0, 6)
    [alert] = desk.surges()
    assert alert.status == "pending" and alert.channel == "console"
    [due] = desk.store.due_alerts(T0 + HOUR)
    assert due.kind == "surge" and due.story_id == 0
    payload = due.payload
    assert payload["count"] == 5  # it fires as the fifth story arrives
    assert payload["summary"].startswith("5 stories in the last 1 h; usual 0.12 per 1 h over 7 d — 41x")
    assert payload["stories"][0]["title"].startswith("Putin news")
    # The message, as delivery renders it for a text channel.
    message = _alert(desk.setup.channels["console"], [due])
    assert message.title.startswith("Surge: Putin — 5 stories in the last 1 h") and "[putin-surge]" in message.title
    assert "Putin news" in message.body and "https://feed" in message.body
    # The burst goes on: no second alert.
    desk.burst(T0 + timedelta(minutes=40), 5)
    assert len(desk.surges()) == 1


def test_the_state_survives_a_restart(desk: Desk) -> None:
    desk.quiet_week(T0)
    desk.burst(T0, 6)
    desk.watch = SurgeWatch()  # a new process: nothing remembered but the database
    desk.burst(T0 + timedelta(minutes=36), 3)
    assert len(desk.surges()) == 1
    assert desk.store.surge_states()["putin-surge"].surging


def test_falls_back_then_bursts_again_makes_a_second_alert(desk: Desk) -> None:
    desk.quiet_week(T0)
    desk.burst(T0, 6)
    desk.store_items(T0 + 3 * HOUR, "Putin again, once")  # the window count is 1: fallen back
    desk.burst(T0 + 4 * HOUR, 6)
    assert len(desk.surges()) == 2


def test_a_slow_rise_that_never_crosses_the_factor_makes_no_alert(desk: Desk) -> None:
    desk.quiet_week(T0, every=30 * timedelta(minutes=1))
    # Usual: 2 stories an hour, so the level is 4 x 2 = 8. One more each hour than the last: 3 to 7 an hour.
    moment = T0
    for per_hour in (3, 4, 5, 6, 7):
        for i in range(per_hour):
            desk.store_items(moment + i * timedelta(minutes=60 / per_hour), f"Putin rising {desk.n}")
        moment += HOUR
    assert desk.surges() == []
    state = desk.store.surge_states()["putin-surge"]
    assert not state.surging and state.checked_at == moment - HOUR + 6 * timedelta(minutes=60 / 7)


def test_syndicated_copies_of_one_story_are_no_surge(desk: Desk) -> None:
    desk.quiet_week(T0)
    for i in range(8):  # one story, eight outlets
        desk.store_items(T0 + i * timedelta(minutes=3), "Putin speaks", feed=f"feed{i % 4}", same_text=424242)
    assert desk.surges() == []


def test_min_count_is_respected(tmp_path: Path) -> None:
    desk = Desk(tmp_path, min_count=8, factor=2)
    try:
        desk.quiet_week(T0)
        desk.burst(T0, 7)
        assert desk.surges() == []
        desk.store_items(T0 + 45 * timedelta(minutes=1), "Putin, the eighth")
        assert len(desk.surges()) == 1
    finally:
        desk.store.close()


def test_first_fetch_items_do_not_count(desk: Desk) -> None:
    desk.quiet_week(T0)
    items = [
        Item(guid=f"old-{i}", link=f"https://old.example/{i}", title=f"Putin archive {i}", text=text(9000 + i))
        for i in range(10)
    ]
    record_poll(
        desk.store,
        desk.setup,
        desk.store.feed("feed1").id,
        analyse(desk.setup, items, None, "feed1", (), [() for _ in items]),
        now=T0,
        feed=None,
        backfill=True,
    )  # type: ignore[arg-type]
    desk.store_items(T0 + timedelta(minutes=1), "Putin today")
    assert desk.surges() == []


def test_a_surge_within_the_cooldown_is_stored_suppressed_with_its_reason(tmp_path: Path) -> None:
    desk = Desk(tmp_path, cooldown="6h")
    try:
        desk.quiet_week(T0)
        desk.burst(T0, 6)
        desk.store_items(T0 + 3 * HOUR, "Putin again, once")  # fallen back
        desk.burst(T0 + 4 * HOUR, 6)  # a second surge, 4 h after the first alerted
        second, first = desk.surges()
        assert first.status == "pending" and first.kind == "surge"
        assert second.status == "suppressed" and second.reason.startswith("cooldown (6 h): last surge alerted 4 h")
        assert second.title == "Surge: Putin" and second.summary.startswith("5 stories in the last 1 h")
        desk.store_items(T0 + 8 * HOUR, "Putin again, once more")  # fallen back
        desk.burst(T0 + 10 * HOUR, 6)  # 10 h after the last surge that alerted
        assert [a.status for a in desk.surges()] == ["pending", "suppressed", "pending"]
    finally:
        desk.store.close()
