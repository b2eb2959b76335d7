"""Several daemons on one PostgreSQL database, with the real feed server and a real webhook receiver: one story
reaching two instances at the same moment alerts once; instances killed in the middle of a poll or a send lose
no alert, repeat at most one per kill, and leave their feeds to the others once the leases run out."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from conftest import DaemonProcess, Story, rss, wait_until, write_config

CEASEFIRE = Story(
    "sudan-1", "Ceasefire agreed in Sudan", "Both sides agreed to a ceasefire on Friday.", datetime.now(UTC)
)


def start(config: Path, log: Path, daemons: list[DaemonProcess], webhook=None) -> DaemonProcess:
    daemon = DaemonProcess(config, log, webhook).start()
    daemons.append(daemon)
    return daemon


def titles(webhook) -> Counter[str]:
    return Counter(str(request.json["title"]) for request in webhook.requests)


def test_one_story_reaching_two_instances_at_the_same_moment_alerts_once(
    tmp_path, feed_server, webhook, daemons, pg_dsn
):
    gate = threading.Event()
    feed_server.route("/wire.xml", rss(CEASEFIRE), gate=gate)
    feed_server.route("/agency.xml", rss(CEASEFIRE, title="Agency"), gate=gate)
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": name, "url": feed_server.url(f"/{name}.xml"), "interval": "1h", "alert_first_fetch": True}
            for name in ("wire", "agency")
        ],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        # One poll at a time per instance: each instance claims one of the two feeds.
        poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "2h", "timeout": "60s",
              "concurrency": 1},
        database=pg_dsn,
    )  # fmt: skip
    first = start(config, tmp_path / "first.log", daemons)
    wait_until(lambda: len(feed_server.requests) == 1, "the first instance's poll to reach the feed server")
    second = start(config, tmp_path / "second.log", daemons)
    wait_until(lambda: len(feed_server.requests) == 2, "the second instance's poll of the other feed")
    assert {r.path for r in feed_server.requests} == {"/wire.xml", "/agency.xml"}
    gate.set()  # both answer now: the same story reaches both instances at the same moment
    first.wait_for_log(r"poll\.done")
    second.wait_for_log(r"poll\.done")

    webhook.wait_for(1)
    # Both instances deliver; wait until nothing is due any more, then count.
    wait_until(lambda: "sent 1" in _outbox(config), "the outbox to settle", detail=lambda: _outbox(config))
    assert len(webhook.requests) == 1, titles(webhook)
    assert "Ceasefire agreed in Sudan" in str(webhook.requests[0].json["title"])
    assert first.stop() == 0 and second.stop() == 0


def _outbox(config: Path) -> str:
    from conftest import run_cli

    result = run_cli("status", config=config)
    return next((line for line in result.stdout.splitlines() if line.startswith("outbox:")), result.stderr)


SYLLABLES = "ka lo mi re su ta vin dor pel gar nus tio bre fal quo zen hap rud sil mek".split()


def story(rng: random.Random, key: str) -> Story:
    """A ceasefire story of its own: made-up words, so that no two stories are taken for one."""
    words = ["".join(rng.choices(SYLLABLES, k=3)) for _ in range(24)]
    return Story(key, f"Ceasefire {key} in {words[0]}", f"Ceasefire in {' '.join(words)}.", datetime.now(UTC))


def claimed_by(dsn: str, sql: str) -> str | None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
    return row[0] if row else None


def test_three_instances_share_the_feeds_and_two_killed_lose_no_alert(tmp_path, feed_server, webhook, daemons, pg_dsn):
    rng = random.Random(7)
    feeds = [f"f{n}" for n in range(6)]
    served: dict[str, list[Story]] = {name: [story(rng, f"{name}-0")] for name in feeds}
    gates = {name: threading.Event() for name in feeds}
    for name in feeds:
        gates[name].set()
        feed_server.route(f"/{name}.xml", rss(*served[name]), gate=gates[name])

    def publish(name: str) -> Story:
        new = story(rng, f"{name}-{len(served[name])}")
        served[name].insert(0, new)
        feed_server.route(f"/{name}.xml", rss(*served[name]), gate=gates[name])
        return new

    config = write_config(
        tmp_path / "config",
        feeds=[{"name": name, "url": feed_server.url(f"/{name}.xml"), "alert_first_fetch": True} for name in feeds],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        poll={"min_interval": "1s", "default_interval": "1s", "max_interval": "1s", "timeout": "3s",
              "parse_timeout": "2s", "per_host": 8},
        delivery={"send_timeout": "2s"},
        database=pg_dsn,
    )  # fmt: skip
    lease = 2 * (3 + 2)  # seconds: twice poll.timeout + poll.parse_timeout
    instances = [start(config, tmp_path / f"instance-{n}.log", daemons) for n in range(3)]
    by_pid = {d.process.pid: d for d in instances if d.process is not None}

    def received() -> Counter[str]:
        return Counter(str(r.json["title"]) for r in webhook.requests)

    def expected() -> set[str]:
        return {s.title for stories in served.values() for s in stories}

    def arrived() -> bool:
        return all(any(title in got for got in received()) for title in expected())

    wait_until(arrived, "every first story alerted", timeout=90, detail=lambda: received())
    for daemon in instances:
        daemon.wait_for_log(r"daemon\.started")
    for name in feeds[:3]:
        publish(name)
    wait_until(arrived, "the new stories alerted", detail=lambda: received())

    # kill -9 in the middle of a send: the receiver holds its answer; the alert stays claimed until its lease ends.
    webhook.hold_answers()
    publish("f3")
    wait_until(lambda: any("f3-1" in title for title in received()), "the send of f3's new story to start")
    owner = wait_until(
        lambda: claimed_by(pg_dsn, "SELECT claimed_by FROM alerts WHERE claimed_by IS NOT NULL LIMIT 1"),
        "the alert in flight to be claimed",
    )
    sender = by_pid[int(owner.split(":")[1])]
    sender.kill()
    webhook.answer()

    # kill -9 in the middle of a poll: f4's answer is held while another instance polls it.
    gates["f4"].clear()
    feed_server.clear_requests()
    publish("f4")
    wait_until(lambda: feed_server.requests_for("/f4.xml"), "a poll of f4 to start")
    poller_id = wait_until(
        lambda: claimed_by(pg_dsn, "SELECT leased_by FROM feeds WHERE name = 'f4' AND leased_by IS NOT NULL"),
        "f4's lease",
    )
    poller = by_pid[int(poller_id.split(":")[1])]
    assert poller is not sender and poller.process is not None and poller.process.poll() is None
    poller.kill()
    gates["f4"].set()
    feed_server.clear_requests()

    # Every feed is polled again within its lease by the instance left, and every story arrives.
    for name in feeds:
        wait_until(
            lambda name=name: feed_server.requests_for(f"/{name}.xml"), f"{name} polled again", timeout=lease + 20
        )
    publish("f5")
    wait_until(arrived, "every story alerted after the kills", timeout=90, detail=lambda: received())
    duplicates = sum(count - 1 for count in received().values())
    assert duplicates <= 2, received()  # at most one per kill
    [survivor] = [d for d in instances if d is not sender and d is not poller]
    assert survivor.stop() == 0
