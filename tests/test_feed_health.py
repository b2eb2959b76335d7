from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.feeds.health import FeedHistory, HealthSettings, assess, change_to_report, silence_threshold

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SETTINGS = HealthSettings()


def history(**changes) -> FeedHistory:
    base = {
        "name": "wire",
        "failing_since": None,
        "last_error": None,
        "last_item_at": NOW - timedelta(hours=1),
        "items_in_window": 28 * 12,  # every two hours
        "state": "ok",
    }
    return FeedHistory(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, "ok"),
        ({"failing_since": NOW - timedelta(hours=5, minutes=59)}, "ok"),
        ({"failing_since": NOW - timedelta(hours=6), "last_error": "HTTP 503"}, "failing"),
        # Every two hours usually: quiet for a day (the minimum) is silent, 23 hours is not.
        ({"last_item_at": NOW - timedelta(hours=23)}, "ok"),
        ({"last_item_at": NOW - timedelta(hours=24)}, "silent"),
        # Twice a week usually: silent only after four gaps (14 days).
        ({"items_in_window": 8, "last_item_at": NOW - timedelta(days=13)}, "ok"),
        ({"items_in_window": 8, "last_item_at": NOW - timedelta(days=14)}, "silent"),
        # Too few items to know a rhythm: never silent.
        ({"items_in_window": 3, "last_item_at": NOW - timedelta(days=27)}, "ok"),
        # Failing wins over silent: the silence is its consequence.
        ({"failing_since": NOW - timedelta(days=2), "last_error": "timeout", "last_item_at": NOW - timedelta(days=2)}, "failing"),
    ],
)
def test_states(changes, state):
    assert assess(history(**changes), NOW, SETTINGS).state == state


def test_messages_say_what_and_since_when():
    failing = assess(history(failing_since=NOW - timedelta(hours=7), last_error="HTTP 503 Service Unavailable"), NOW, SETTINGS)
    assert failing.message == "feed 'wire' has failed every poll for 7 h: HTTP 503 Service Unavailable"
    silent = assess(history(last_item_at=NOW - timedelta(days=3)), NOW, SETTINGS)
    assert silent.message == "feed 'wire' has published nothing for 3 d; it usually publishes every 2 h"


def test_each_change_is_reported_once_and_recovery_too():
    bad = history(failing_since=NOW - timedelta(hours=7), last_error="timeout")
    assessment = assess(bad, NOW, SETTINGS)
    assert change_to_report(bad, assessment).startswith("feed 'wire' has failed")
    assert change_to_report(history(failing_since=bad.failing_since, last_error="timeout", state="failing"), assessment) is None
    recovered = history(state="failing")
    assert change_to_report(recovered, assess(recovered, NOW, SETTINGS)) == "recovered: feed 'wire' is working again"
    assert change_to_report(history(), assess(history(), NOW, SETTINGS)) is None


def test_silence_threshold():
    assert silence_threshold(3, SETTINGS) is None
    assert silence_threshold(28, SETTINGS) == timedelta(days=4)
    assert silence_threshold(28 * 24, SETTINGS) == timedelta(days=1)  # hourly feeds: the minimum


def test_the_daemon_reports_a_failing_feed_once_and_its_recovery(tmp_path, feed_server, webhook):
    import asyncio

    from conftest import BACKFILL, rss, write_config

    from monitor.assembly import load_setup
    from monitor.daemon import Monitor
    from monitor.store import open_storage

    feed_server.route("/wire.xml", b"down", status=503)
    setup = load_setup(
        write_config(
            tmp_path / "config",
            feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
            channels={"admin": {"url": webhook.json_url("/admin")}},
            admin_channel="admin",
            feed_health={"failing_after": "6h"},
        )
    )
    clock = [datetime.now(UTC)]

    async def scenario() -> list[str]:
        monitor = Monitor(setup, open_storage(setup.config.settings.database), lambda: clock[0])
        try:
            await monitor.poll_once()
            sent = await monitor.check_feed_health()  # failing for a moment only
            clock[0] += timedelta(hours=7)
            await monitor.poll_once()
            sent += await monitor.check_feed_health()
            sent += await monitor.check_feed_health()  # reported once, not again
            feed_server.route("/wire.xml", rss(*BACKFILL))
            await monitor.poll_once()
            sent += await monitor.check_feed_health()
            return sent
        finally:
            await monitor.close()

    sent = asyncio.run(scenario())
    assert len(sent) == 2
    titles = [r.json["title"] for r in webhook.requests]
    assert titles == ["news-monitor: feed wire failing", "news-monitor: feed wire ok"]
    assert "has failed every poll for 7 h:" in webhook.requests[0].json["message"]
    assert "503" in webhook.requests[0].json["message"]
    assert webhook.requests[1].json["message"] == "recovered: feed 'wire' is working again"
