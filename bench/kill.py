"""kill -9 the daemon again and again while matching stories keep arriving.

Then let it run to the end and count, at a real webhook receiver, the alerts
expected, received, missing and repeated; and measure delivery latency (from
the commit of an alert's row to its arrival at the receiver) in normal running.

    .venv/bin/python bench/kill.py [--kills 20] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import Story, rss, write_config  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from receivers import WebhookReceiver  # noqa: E402


def stories(start: int, count: int) -> list[Story]:
    made = []
    for n in range(start, start + count):
        if n % 2 == 0:
            made.append(Story(f"s-{n}", f"Ceasefire holds in region {n}", f"Monitors said the ceasefire in region {n} held."))
        else:
            made.append(Story(f"s-{n}", f"Markets open higher, session {n}", f"Shares rose in session {n}."))
    return made


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)], stdout=out, stderr=out, cwd=REPO
        )


def wait_started(log: Path, before: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.read_text(errors="replace").count("daemon.started") > before:
            return
        time.sleep(0.05)
    raise SystemExit("the daemon did not start")


def titles(receiver: WebhookReceiver) -> Counter[str]:
    return Counter(r.json["title"].rsplit(" [", 1)[0] for r in receiver.requests if r.status == 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with FeedServer() as server, WebhookReceiver() as receiver, tempfile.TemporaryDirectory() as tmp:
        served = stories(0, 20)
        server.route("/wire.xml", rss(*served))
        config = write_config(
            Path(tmp) / "config",
            feeds=[{"name": "wire", "url": server.url("/wire.xml"), "alert_first_fetch": True}],
            channels={"hook": {"url": receiver.json_url("/hook")}},
            rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        )
        log = Path(tmp) / "daemon.log"
        log.touch()
        for kill in range(args.kills):
            process = start(config, log)
            wait_started(log, kill)
            served = stories(len(served), 10) + served
            server.route("/wire.xml", rss(*served))
            time.sleep(rng.uniform(0.1, 2.5))
            process.send_signal(signal.SIGKILL)
            process.wait()

        expected = {s.title for s in served if s.title.startswith("Ceasefire")}
        process = start(config, log)
        wait_started(log, args.kills)
        deadline = time.monotonic() + 120
        while not expected <= set(titles(receiver)) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)
        received = titles(receiver)

        # Latency in normal running: one new matching story every half second.
        latency_start = len(receiver.requests)
        next_even = len(served) + len(served) % 2  # even numbers are ceasefire stories
        for n in range(20):
            served = stories(next_even + 2 * n, 1) + served
            server.route("/wire.xml", rss(*served))
            time.sleep(0.5)
        time.sleep(3)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        with sqlite3.connect(Path(tmp) / "config" / "state" / "news-monitor.db") as conn:
            created = dict(conn.execute("SELECT items.title, alerts.created_at FROM alerts JOIN items ON items.id = alerts.item_id"))
        latencies = [
            r.received_at - datetime.fromisoformat(created[r.json["title"].rsplit(" [", 1)[0]]).timestamp()
            for r in receiver.requests[latency_start:]
            if r.status == 200
        ]

    duplicates = sum(count - 1 for count in received.values())
    missing = expected - set(received)
    print(f"kills: {args.kills} (kill -9 at a random moment 0.1-2.5 s after start, stories arriving meanwhile)")
    print(f"alerts expected: {len(expected)}, received: {len(set(received) & expected)}, missing: {len(missing)}, "
          f"repeated: {duplicates} (bound: at most one per kill, {args.kills})")  # fmt: skip
    if latencies:
        latencies.sort()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(f"delivery latency, alert committed -> received ({len(latencies)} alerts): "
              f"median {statistics.median(latencies) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")  # fmt: skip
    if missing:
        print("MISSING:", json.dumps(sorted(missing)))
        raise SystemExit(1)


if __name__ == "__main__":
    main()
