"""kill -9 at random moments while stories keep arriving: after a restart nothing
stored is lost and every alert arrives, repeated at most once per kill."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter
from pathlib import Path

from conftest import DEFAULT_ENTITIES, DaemonProcess, Story, rss, wait_until, write_config

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

    def received() -> Counter[str]:
        return Counter(r.json["title"].rsplit(" [", 1)[0] for r in webhook.requests)

    wait_until(
        lambda: expected <= set(received()),
        "every ceasefire alert to arrive after the last restart",
        timeout=90,
        detail=lambda: f"missing: {sorted(expected - set(received()))}",
    )
    # Alerts a kill left in flight are still pending and due: the final daemon re-sends them
    # in its delivery rounds, oldest first. A story published now has its alert sent after
    # all of them, so once it has arrived no re-send is still to come.
    last = Story("s-last", "Ceasefire talks to resume in Geneva", "Negotiators agreed on Friday to meet again next week.")
    served = [last, *served]
    feed_server.route("/wire.xml", rss(*served))
    wait_until(lambda: last.title in received(), "the alert for a story published after every re-send")
    assert final.stop() == 0

    # No process of a killed daemon lingers.
    assert left_behind
    wait_until(
        lambda: not [pid for pid in left_behind if Path(f"/proc/{pid}").exists()],
        "the processes the killed daemons had started to exit",
        timeout=10,
        detail=lambda: [pid for pid in left_behind if Path(f"/proc/{pid}").exists()],
    )

    titles = received()
    expected.add(last.title)
    assert set(titles) == expected, f"missing: {expected - set(titles)}"
    assert titles[last.title] == 1
    duplicates = sum(count - 1 for count in titles.values())
    assert duplicates <= KILLS
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (len(served),)
        assert conn.execute("SELECT count(*) FROM alerts WHERE status != 'sent'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM alerts").fetchone() == (len(expected),)
