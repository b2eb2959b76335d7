"""Quiet is not dead: a feed with no recent entries is still polled at least every
``poll.max_interval`` (1 h by default); only failures back off further, up to
``poll.max_error_interval``. Through the real CLI: ``poll --once``, then ``status``."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Story, rss, run_cli, write_config

from monitor.config import PollSettings
from monitor.feeds.schedule import CacheHints, Limits, after_error, after_success

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
DEFAULTS = PollSettings()
LIMITS = Limits(
    interval=DEFAULTS.default_interval,
    minimum=DEFAULTS.min_interval,
    maximum=DEFAULTS.max_interval,
    error_maximum=DEFAULTS.max_error_interval,
)


def test_the_defaults_poll_quiet_feeds_hourly_and_let_failing_ones_wait_six_hours():
    assert (DEFAULTS.max_interval, DEFAULTS.max_error_interval) == (timedelta(hours=1), timedelta(hours=6))


@pytest.mark.parametrize("entries", [0, 1, 7, 40, 168, 10_000])
@pytest.mark.parametrize(
    "hints",
    [
        {},
        {"ttl_minutes": 24 * 60},
        {"hints": CacheHints(max_age=timedelta(days=2), cache_control="max-age=172800")},
        {"hints": CacheHints(expires=NOW + timedelta(days=30))},
    ],
    ids=["no hints", "RSS ttl of a day", "max-age of two days", "Expires in a month"],
)
def test_a_quiet_feed_is_never_scheduled_later_than_the_maximum(entries, hints):
    rng = random.Random(entries)
    for configured in (False, True):
        limits = Limits(**{**vars(LIMITS), "configured": configured, "interval": timedelta(hours=12)})
        for _ in range(200):
            assert after_success(NOW, limits, entries_last_week=entries, rng=rng, **hints).at <= NOW + LIMITS.maximum


def test_a_failing_feed_backs_off_beyond_the_maximum_up_to_the_error_ceiling():
    rng = random.Random(9)
    waits = [max(after_error(NOW, LIMITS, count, rng=rng).at - NOW for _ in range(50)) for count in range(1, 40)]
    assert waits[0] <= LIMITS.minimum * 1.2
    assert any(wait > LIMITS.maximum for wait in waits)  # errors wait longer than quiet feeds do
    assert all(wait <= LIMITS.error_maximum for wait in waits)
    assert waits[-1] > LIMITS.error_maximum * 0.8  # and reach the ceiling
    assert after_error(NOW, LIMITS, 39, rng=rng).reason == "error backoff (39 in a row): 6 h (maximum)"


@pytest.mark.parametrize(
    ("error_maximum", "ceiling"),
    [(None, timedelta(hours=1)), (timedelta(minutes=30), timedelta(hours=1)), (timedelta(hours=3), timedelta(hours=3))],
    ids=["unset: the maximum", "below the maximum: the maximum", "above: itself"],
)
def test_the_error_ceiling_is_never_below_the_maximum(error_maximum, ceiling):
    limits = Limits(
        interval=LIMITS.interval, minimum=LIMITS.minimum, maximum=LIMITS.maximum, error_maximum=error_maximum
    )
    assert limits.error_ceiling == ceiling
    assert after_error(NOW, limits, 60).at - NOW <= ceiling


def without_poll_limits(config: Path, *names: str) -> None:
    """Drop these poll settings from monitor.yaml, so that their defaults apply."""
    path = config / "monitor.yaml"
    monitor = json.loads(path.read_text())
    for name in names:
        monitor["poll"].pop(name, None)
    path.write_text(json.dumps(monitor, indent=2))


def feed_status(config: Path) -> dict[str, dict[str, object]]:
    result = run_cli("status", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {feed["name"]: feed for feed in json.loads(result.stdout)["feeds"]}


def next_poll_in(feed: dict[str, object], since: datetime) -> timedelta:
    return datetime.fromisoformat(str(feed["next_poll_at"])) - since


def test_a_feed_quiet_for_a_week_is_polled_again_within_the_hour(tmp_path, feed_server):
    old = datetime.now(UTC) - timedelta(days=20)
    feed_server.route(
        "/quiet.xml", rss(*(Story(f"q-{n}", f"Old story {n}", "Text.", old - timedelta(days=n)) for n in range(3)))
    )
    feed_server.route("/empty.xml", rss())
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "quiet", "url": feed_server.url("/quiet.xml")},
            {"name": "empty", "url": feed_server.url("/empty.xml")},
        ],
        poll={"min_interval": "2m", "default_interval": "10m"},
    )
    without_poll_limits(config, "max_interval")  # the default applies

    polled = datetime.now(UTC)
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0, result.stderr
    feeds = feed_status(config)
    for name in ("quiet", "empty"):
        assert feeds[name]["next_poll_reason"] == "no entries last week: every 1 h (maximum)"
        assert timedelta(minutes=50) <= next_poll_in(feeds[name], polled) <= timedelta(hours=1, minutes=1)


def test_a_failing_feed_backs_off_beyond_the_quiet_maximum(tmp_path, feed_server):
    feed_server.route("/down.xml", b"down for maintenance", status=500, content_type="text/plain")
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "down", "url": feed_server.url("/down.xml")}],
        poll={"min_interval": "1m", "default_interval": "1m", "max_interval": "1m"},
    )
    without_poll_limits(config, "max_error_interval")  # the default (6 h) is the ceiling of the backoff

    for count in (1, 2, 3):
        polled = datetime.now(UTC)
        result = run_cli("poll", "--feed", "down", "--once", config=config)
        assert result.returncode == 0, result.stderr
        feed = feed_status(config)["down"]
        assert feed["error_count"] == count
    # The third failure in a row waits 4 minutes (+-20%), four times the quiet maximum.
    assert feed["next_poll_reason"] == "error backoff (3 in a row): 4 min"
    assert timedelta(minutes=3) <= next_poll_in(feed, polled) <= timedelta(minutes=5)


def test_the_error_ceiling_may_not_be_below_the_quiet_maximum(tmp_path):
    config = write_config(
        tmp_path / "config", feeds=[], poll={"max_interval": "2h", "max_error_interval": "1h", "min_interval": "1m"}
    )
    result = run_cli("check", config=config)
    assert result.returncode != 0
    assert "monitor.yaml:" in result.stderr
    assert "poll.max_error_interval is below poll.max_interval" in result.stderr
