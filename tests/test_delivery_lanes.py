"""One receiver that trickles (one byte every so often, never done) delays only its own channel:
through the real daemon, a real SQLite file and real webhook receivers."""

from __future__ import annotations

import re
import signal
import sqlite3
from pathlib import Path

import pytest
from conftest import DaemonProcess, Story, rss, run_cli, wait_until, write_config
from receivers import WebhookReceiver

CEASEFIRE = Story("c-1", "Ceasefire holds in the north", "Monitors said the ceasefire held overnight.")
LATER = Story("c-2", "Ceasefire talks resume in Geneva", "Negotiators met again on Friday.")


@pytest.fixture
def slow():
    with WebhookReceiver() as receiver:
        yield receiver


def lanes_config(tmp_path: Path, feed_server, slow: WebhookReceiver, fast: WebhookReceiver, **delivery: str) -> Path:
    return write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"slow": {"url": slow.json_url("/slow")}, "fast": {"url": fast.json_url("/fast")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["slow", "fast"]}],
        delivery=delivery,
    )


def rows(config: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        return conn.execute(sql).fetchall()


def titles(receiver: WebhookReceiver) -> list[str]:
    return [request.json["title"] for request in receiver.requests if request.json]


def test_a_trickling_receiver_delays_only_its_own_channel(tmp_path, feed_server, slow, webhook, daemons):
    fast = webhook
    slow.trickle(every=1.0)
    feed_server.route("/wire.xml", rss(CEASEFIRE))
    # A send may take 10 minutes here: were the channels not independent, the fast
    # channel's second alert would wait behind the slow channel's send in flight.
    config = lanes_config(tmp_path, feed_server, slow, fast, send_timeout="10m")
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)

    fast.wait_for(1, timeout=60)
    wait_until(lambda: slow.requests, "the slow channel's send to begin trickling")
    # A later story: its alert to the fast channel goes out while the slow send still trickles.
    feed_server.route("/wire.xml", rss(LATER, CEASEFIRE))
    wait_until(
        lambda: f"{LATER.title} [ceasefire]" in titles(fast),
        "the later story's alert at the healthy channel",
        timeout=90,
        detail=daemon.log,
    )
    log = daemon.log()
    assert len(slow.requests) == 1  # the slow channel's first send is still in flight
    assert not re.search(r"alert\.(sent|retry|dead) .*channel=slow", log), log
    assert titles(fast) == [f"{CEASEFIRE.title} [ceasefire]", f"{LATER.title} [ceasefire]"]
    assert rows(config, "SELECT channel, status, count(*) FROM alerts GROUP BY channel, status ORDER BY channel") == [
        ("fast", "sent", 2),
        ("slow", "pending", 2),
    ]


def test_a_send_that_times_out_is_a_failed_attempt_retried_later(tmp_path, feed_server, slow, webhook, daemons):
    slow.trickle(every=1.0)
    feed_server.route("/wire.xml", rss(CEASEFIRE))
    config = lanes_config(tmp_path, feed_server, slow, webhook, send_timeout="2s", retry_initial="1s", retry_max="2s")
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)

    [retry] = daemon.wait_for_log(r"alert\.retry .*channel=slow", timeout=60)
    assert "timed out after 2s" in retry, retry
    [(status, attempts, error)] = rows(config, "SELECT status, attempts, last_error FROM alerts WHERE channel = 'slow'")
    assert status == "pending" and attempts >= 1 and "timed out after 2s" in error
    webhook.wait_for(1, timeout=30)  # the healthy channel was served meanwhile

    slow.recover()  # the trickle breaks off, and the receiver answers again
    daemon.wait_for_log(r"alert\.sent .*channel=slow", timeout=60)
    assert f"{CEASEFIRE.title} [ceasefire]" in titles(slow)
    assert daemon.stop() == 0
    [(status, error)] = rows(config, "SELECT status, last_error FROM alerts WHERE channel = 'slow'")
    assert status == "sent" and "timed out" in error  # why it took more than one attempt stays on record


def test_sigterm_during_a_trickle_exits_at_once_and_the_alert_waits_for_the_next_start(
    tmp_path, feed_server, slow, webhook, daemons
):
    slow.trickle(every=1.0)
    feed_server.route("/wire.xml", rss(CEASEFIRE))
    config = lanes_config(tmp_path, feed_server, slow, webhook, send_timeout="10m")
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    webhook.wait_for(1, timeout=60)
    wait_until(lambda: slow.requests, "the slow channel's send to begin trickling")

    daemon.process.send_signal(signal.SIGTERM)
    # Well under the send timeout: the daemon does not wait for the send in flight.
    assert daemon.process.wait(timeout=30) == 0
    log = daemon.log()
    assert "daemon.stopped" in log and "deliver.stopped abandoned_sends=1" in log, log
    # Not failed, not lost: pending as it was, claimed by nobody, due at the next start.
    assert rows(config, "SELECT channel, status, attempts, last_error, claimed_by FROM alerts ORDER BY channel") == [
        ("fast", "sent", 1, None, None),
        ("slow", "pending", 0, None, None),
    ]

    slow.recover()
    restarted = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(restarted)
    restarted.wait_for_log(r"alert\.sent .*channel=slow", timeout=60)
    assert restarted.stop() == 0
    assert rows(config, "SELECT channel, status, attempts FROM alerts ORDER BY channel") == [
        ("fast", "sent", 1),
        ("slow", "sent", 1),
    ]
    assert titles(webhook) == [f"{CEASEFIRE.title} [ceasefire]"]  # the healthy channel got it once


def test_notify_test_to_a_trickling_receiver_gives_up_after_the_send_timeout(tmp_path, slow):
    slow.trickle(every=1.0)
    config = write_config(
        tmp_path / "config",
        feeds=[],
        channels={"slow": {"url": slow.json_url("/slow")}},
        delivery={"send_timeout": "2s"},
    )
    result = run_cli("notify-test", "slow", config=config, timeout=60)
    assert result.returncode == 1
    assert "timed out after 2s" in result.stderr, result.stderr
    assert len(slow.requests) == 1
