"""A reload applies a changed interval at once: the next poll is recomputed from the
last poll and the new interval (or is now, when that is already past), instead of
keeping the time decided under the old interval. Through the real daemon, SIGHUP
and ``status``."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import DaemonProcess, Story, rss, run_cli, wait_until, write_config
from test_store_contract import IMPLEMENTATIONS

from monitor.feeds.schedule import Limits, after_change
from monitor.items import FeedSpec
from monitor.store import FeedOutcome

OLD = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)  # far more than a week ago: the feed is quiet


def feeds(config: Path) -> dict[str, dict[str, object]]:
    result = run_cli("status", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {feed["name"]: feed for feed in json.loads(result.stdout)["feeds"]}


def at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def edit(config: Path, change) -> None:
    path = config / "monitor.yaml"
    monitor = json.loads(path.read_text())
    change(monitor)
    path.write_text(json.dumps(monitor, indent=2))


def test_a_reload_reschedules_a_changed_interval_at_once(tmp_path, feed_server, daemons):
    feed_server.route("/wire.xml", rss(Story("w-1", "Quiet day", "Nothing happened.", OLD)))
    feed_server.route("/quiet.xml", rss(Story("q-1", "Old news", "Nothing new.", OLD)))
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": feed_server.url("/wire.xml"), "interval": "1h"},
            {"name": "quiet", "url": feed_server.url("/quiet.xml")},
        ],
        poll={"min_interval": "1s", "default_interval": "1m", "max_interval": "2h"},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=quiet")
    daemon.wait_for_log(r"poll\.done feed=wire")
    before = feeds(config)
    assert before["wire"]["next_poll_reason"] == "configured interval 1 h"
    assert before["quiet"]["next_poll_reason"] == "no entries last week: every 2 h (maximum)"
    assert at(before["wire"]["next_poll_at"]) - at(before["wire"]["last_success_at"]) > timedelta(minutes=50)

    # A shorter interval for wire, and the default maximum (an hour) for quiet; SIGHUP.
    def shorter(monitor: dict) -> None:
        monitor["feeds"][0]["interval"] = "10m"
        del monitor["poll"]["max_interval"]

    edit(config, shorter)
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r"config\.reloaded")
    after = wait_until(
        lambda: (now := feeds(config))["wire"]["next_poll_reason"] != before["wire"]["next_poll_reason"] and now,
        "the next poll of wire to change after the reload",
        timeout=30,
        detail=lambda: feeds(config)["wire"],
    )
    wire, quiet = after["wire"], after["quiet"]
    assert wire["next_poll_reason"] == "configured interval 10 min: rescheduled"
    assert at(wire["next_poll_at"]) == at(wire["last_success_at"]) + timedelta(minutes=10)
    assert quiet["next_poll_reason"] == "no entries last week: every 1 h (maximum): rescheduled"
    assert at(quiet["next_poll_at"]) == at(quiet["last_success_at"]) + timedelta(hours=1)

    # An interval already overdue since the last poll: polled at once.
    polled = at(wire["last_success_at"])
    wait_until(lambda: datetime.now(UTC) - polled > timedelta(seconds=3), "three seconds since the last poll of wire")
    edit(config, lambda monitor: monitor["feeds"][0].update(interval="2s"))
    daemon.process.send_signal(signal.SIGHUP)
    [line] = daemon.wait_for_log(r"poll\.rescheduled feed=wire .*2 s", timeout=30)
    assert "due now" in line
    daemon.wait_for_log(r"poll\.done feed=wire", count=2, timeout=30)
    assert at(feeds(config)["wire"]["last_success_at"]) > polled
    assert daemon.stop() == 0


# --- the parts: the decision, and the store's side (every backend) ------------------------

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
M, H = timedelta(minutes=1), timedelta(hours=1)


def test_the_new_pace_counts_from_the_last_poll():
    limits = Limits(interval=10 * M, minimum=2 * M, maximum=H, configured=True, error_maximum=6 * H)
    soon = after_change(NOW, NOW - 4 * M, limits)
    assert (soon.at, soon.reason) == (NOW + 6 * M, "configured interval 10 min: rescheduled")
    overdue = after_change(NOW, NOW - 30 * M, limits)
    assert (overdue.at, overdue.reason) == (NOW, "configured interval 10 min: rescheduled, due now")
    assert after_change(NOW, None, limits).at == NOW  # never polled: now
    quiet = after_change(NOW, NOW - 5 * M, Limits(interval=10 * M, minimum=2 * M, maximum=H), entries_last_week=0)
    assert (quiet.at, quiet.reason) == (NOW + 55 * M, "no entries last week: every 1 h (maximum): rescheduled")


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_a_store_moves_a_feeds_next_poll_and_tells_its_last_poll(implementation, tmp_path):
    with IMPLEMENTATIONS[implementation](tmp_path) as store:
        store.sync_feeds([FeedSpec("wire", "http://127.0.0.1/wire.xml", 10 * M)], NOW)
        wire = store.feed("wire")
        assert wire.last_polled_at is None
        store.record_feed_outcome(FeedOutcome(wire.id, NOW, NOW + H, "configured interval 1 h"))
        assert store.feed("wire").last_polled_at == NOW
        store.reschedule_feed(wire.id, NOW + 10 * M, "configured interval 10 min: rescheduled")
        [status] = store.feed_status()
        assert (status.next_poll_at, status.next_poll_reason) == (
            NOW + 10 * M,
            "configured interval 10 min: rescheduled",
        )
        assert store.feed("wire").last_polled_at == NOW and store.feeds_due(NOW + 10 * M) != []
