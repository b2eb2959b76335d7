"""Surge alerts in the real daemon: a spike rule added live on a long history never holds up another feed's alert,
and its surge is delivered once to a real receiver."""

from __future__ import annotations

import json
import random
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import DaemonProcess, Story, rss, write_config
from test_surge_store import text

from monitor.assembly import load_setup
from monitor.items import Item
from monitor.store import Intent, ItemWrite, open_storage

# Enough stored history that evaluating it for a spike rule just added takes seconds (3 s or more on an idle
# machine; a poll asked for over the control socket is answered in a fraction of that): a check that ran on the
# event loop would hold every poll, control request and alert for that long.
HISTORY = 40_000
WORDS = [f"w{n}" for n in range(5_000)]


def store_history(config: Path, feed: str, count: int, now: datetime) -> None:
    """``count`` items of ``feed`` over the week before ``now``, one in 500 about Putin, straight through the store."""
    setup = load_setup(config)
    rng = random.Random(1)
    with open_storage(setup.config.settings.database) as store:
        store.sync_feeds(setup.config.feed_specs(), now - timedelta(days=9))
        feed_id = store.feed(feed).id
        batches = count // 1_000
        for batch in range(batches):
            at = now - timedelta(days=7) + (timedelta(days=7) - timedelta(hours=2)) * batch / batches
            writes = []
            for n in range(batch * 1_000, (batch + 1) * 1_000):
                words = rng.choices(WORDS, k=60)
                title = " ".join(words[:8]) + (" Putin" if n % 500 == 0 else "")
                item = Item(guid=f"h{n}", link=f"https://wire.example/h{n}", title=title, text=" ".join(words))
                writes.append(ItemWrite(feed_id, item))
            store.write(Intent(at, tuple(writes)))


def rules(*spike: bool) -> list[dict[str, object]]:
    found: list[dict[str, object]] = [{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}]
    if spike:
        found.append({"name": "putin-surge", "spike": "Putin", "cooldown": "6h", "notify": ["hook"]})
    return found


def control_poll(config: Path, feed: str) -> dict[str, object]:
    """Ask the daemon to poll ``feed`` now over its control socket (as `poll --feed` does); its reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(120)
        client.connect(str(config / "state" / "news-monitor.sock"))
        client.sendall(json.dumps({"command": "poll", "feed": feed}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = client.recv(65536)
            if not chunk:
                break
            reply += chunk
    return json.loads(reply)


def index_of(log: list[str], pattern: str) -> int:
    return next(n for n, line in enumerate(log) if pattern in line)


def test_a_spike_rule_added_live_on_a_long_history_delays_no_other_alert_and_fires_once(
    tmp_path: Path, feed_server, webhook, daemons
) -> None:
    now = datetime.now(UTC)
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": feed_server.url("/wire.xml")},
            {"name": "desk", "url": feed_server.url("/desk.xml")},
        ],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=rules(),
    )
    store_history(config, "wire", HISTORY, now)
    feed_server.route("/wire.xml", rss(Story("w-0", "Quiet day", "Nothing happened.")))
    feed_server.route("/desk.xml", rss(Story("d-0", "Quiet desk", "Nothing happened.")))
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=wire .*backfill=true")
    daemon.wait_for_log(r"poll\.done feed=desk .*backfill=true")

    # The spike rule, added by a live edit of rules.yaml; then a burst of Putin stories on the wire.

    (config / "rules.yaml").write_text(json.dumps({"rules": rules(True)}))
    daemon.wait_for_log(r"config\.reloaded .*2 rules", timeout=30)
    burst = [Story(f"b{i}", f"Putin surge story {i}", text(7000 + i)) for i in range(6)]
    feed_server.route("/wire.xml", rss(*burst))
    daemon.wait_for_log(r"surge\.history_started rule=putin-surge", timeout=60)
    # While the rule's history is evaluated, the daemon answers a poll of another feed, whose keyword alert goes out.
    feed_server.route("/desk.xml", rss(Story("d-1", "Ceasefire agreed in Sudan", "Both sides agreed to a ceasefire.")))
    reply = control_poll(config, "desk")
    assert reply["ok"] is True, reply
    assert "surge.history_done" not in daemon.log()  # answered while the history was still being evaluated
    [ceasefire] = webhook.wait_for(1, timeout=60)
    assert ceasefire.json["title"].startswith("Ceasefire agreed in Sudan")

    [done] = daemon.wait_for_log(r"surge\.history_done rule=putin-surge", timeout=120)
    assert int(done.split("items=")[1].split()[0]) >= HISTORY  # the whole lookback was read and evaluated
    daemon.wait_for_log(r"surge\.fired rule=putin-surge", timeout=30)
    requests = webhook.wait_for(2, timeout=60)
    log = daemon.log().splitlines()
    # The order of events: the desk's poll and its alert came while the history was being evaluated.
    started = index_of(log, "surge.history_started")
    desk_alerted = next(n for n, line in enumerate(log) if "poll.done feed=desk" in line and "alerts=1" in line)
    finished = index_of(log, "surge.history_done")
    assert started < desk_alerted < finished < index_of(log, "surge.fired")
    sent = [n for n, line in enumerate(log) if "alert.sent" in line]
    assert sent and started < sent[0] < finished, "\n".join(log)
    surge = requests[1].json
    assert surge["title"].startswith("Surge: Putin")
    assert "6 stories in the last 1 h" in surge["message"] and "Putin surge story" in surge["message"]

    # Once per surge: more of the same story flow is counted, and alerts nobody.
    more = [Story(f"c{i}", f"Putin surge goes on {i}", text(8000 + i)) for i in range(3)]
    feed_server.route("/wire.xml", rss(*more, *burst))
    daemon.wait_for_log(r"poll\.done feed=wire .*fresh=3", timeout=60)
    feed_server.route("/desk.xml", rss(Story("d-2", "Another ceasefire", "A ceasefire in Yemen too.")))
    webhook.wait_for(3, timeout=60)
    assert daemon.stop() == 0
    assert [r.json["title"].split(" ")[0] for r in webhook.requests] == ["Ceasefire", "Surge:", "Another"]
    assert daemon.log().count("surge.fired") == 1
