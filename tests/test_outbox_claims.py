"""Two processes delivering from one database send each alert once: a row is claimed before
it is sent. Through the real daemon and the real `poll --once` beside it, a real SQLite file
and a real webhook receiver."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import DaemonProcess, Story, cli_env, rss, wait_until, write_config

STORIES = [
    Story(f"s-{n}", f"Ceasefire holds in region {n}", f"Monitors said the ceasefire in region {n} held.")
    for n in range(40)
]


def rows(config: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        return conn.execute(sql).fetchall()


def test_poll_once_beside_the_daemon_sends_no_alert_twice(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/wire.xml", rss(*STORIES))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        delivery={"send_timeout": "10m"},  # the receiver holds its answers for a while below
    )
    # The receiver holds its answers: the daemon's first send is in flight for certain
    # when `poll --once` starts delivering from the same outbox.
    webhook.hold_answers()
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    webhook.wait_for(1, timeout=90)
    once = subprocess.Popen(
        [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
        cwd=config,
    )
    try:
        # `poll --once` sends too (another alert, since the daemon holds the first); then both go on.
        webhook.wait_for(2, timeout=90)
        webhook.answer()
        _, stderr = once.communicate(timeout=120)
    finally:
        if once.poll() is None:
            once.kill()
            once.wait()
    assert once.returncode == 0, stderr
    delivered = int(re.search(r"delivered (\d+)", stderr).group(1))
    assert delivered >= 1, stderr  # it did take part

    # Once every row is marked sent, no process can claim (and send) one again.
    wait_until(
        lambda: rows(config, "SELECT count(*) FROM alerts WHERE status = 'sent'") == [(40,)],
        "all 40 alerts to be marked sent",
        timeout=120,
        detail=lambda: rows(config, "SELECT status, count(*) FROM alerts GROUP BY status"),
    )
    assert daemon.stop() == 0
    received = Counter(request.json["title"] for request in webhook.requests)
    assert received == Counter({f"{story.title} [ceasefire]": 1 for story in STORIES})
    assert len(re.findall(r"alert\.sent ", daemon.log())) == 40 - delivered
    assert rows(config, "SELECT count(*) FROM alerts WHERE attempts != 1 OR claimed_by IS NOT NULL") == [(0,)]
