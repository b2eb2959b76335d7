"""kill -9 at random moments while stories keep arriving: after a restart nothing
stored is lost and every alert arrives, repeated at most once per kill."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

from conftest import DEFAULT_ENTITIES, DaemonProcess, Story, rss, write_config

KILLS = 4


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def stories(start: int, count: int) -> list[Story]:
    made = []
    for n in range(start, start + count):
        if n % 3 == 0:
            made.append(Story(f"s-{n}", f"Ceasefire holds in region {n}", f"Monitors said the ceasefire in region {n} held overnight."))
        else:
            made.append(Story(f"s-{n}", f"Markets open higher, session {n}", f"Shares rose in early trading in session {n}."))
    return made


def test_kill_9_loses_nothing_and_repeats_at_most_the_alert_in_flight(tmp_path, feed_server, webhook, daemons):
    rng = random.Random(1234)
    served: list[Story] = stories(0, 30)
    feed_server.route("/wire.xml", rss(*served))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
    )
    log = tmp_path / "daemon.log"
    left_behind: list[int] = []  # processes the daemons had started (the feed parser)
    for kill in range(KILLS):
        daemon = DaemonProcess(config, log).start()
        daemons.append(daemon)
        daemon.wait_for_log(r"daemon\.started", timeout=60)
        # New stories arrive while the daemon works; the kill lands mid-poll,
        # mid-delivery or in between.
        served = stories(len(served), 12) + served
        feed_server.route("/wire.xml", rss(*served))
        time.sleep(rng.uniform(0.2, 2.5))
        children = children_of(daemon.process.pid)
        daemon.kill()
        assert daemon.process.returncode == -9
        left_behind.extend(children)

    final = DaemonProcess(config, log).start()
    daemons.append(final)
    expected = {s.title for s in served if s.title.startswith("Ceasefire")}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        received = {r.json["title"].split(": ", 1)[1] for r in webhook.requests}
        if expected <= received:
            break
        time.sleep(0.5)
    time.sleep(2)  # a last delivery tick: anything still pending would go out now
    assert final.stop() == 0

    # No process of a killed daemon lingers.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in left_behind) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left_behind and not [pid for pid in left_behind if Path(f"/proc/{pid}").exists()]

    titles = Counter(r.json["title"].split(": ", 1)[1] for r in webhook.requests)
    assert set(titles) == expected, f"missing: {expected - set(titles)}"
    duplicates = sum(count - 1 for count in titles.values())
    assert duplicates <= KILLS
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (len(served),)
        assert conn.execute("SELECT count(*) FROM alerts WHERE status != 'sent'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (len(expected),)
