"""One receiver that trickles must not hold back the others, nor the daemon's exit.

Two webhook channels: "slow" answers one byte every 2 s and never finishes,
"fast" answers at once. Three stories alert both; then a fourth story is
published and the time until its alert reaches "fast" is measured. Then
SIGTERM, and the time until the daemon exits is measured, with what the
outbox holds for "slow" afterwards.

    .venv/bin/python bench/delivery_lanes.py [--trickle 2] [--send-timeout 30s]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import Story, rss, write_config  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from receivers import WebhookReceiver  # noqa: E402

BACKLOG = [
    Story(f"s-{n}", f"Ceasefire holds in region {n}", f"Monitors said the ceasefire in region {n} held.")
    for n in range(3)
]
LATER = Story("s-later", "Ceasefire talks resume in Geneva", "Negotiators met again on Friday.")


def wait(condition, what: str, timeout: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise SystemExit(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trickle", type=float, default=2.0, help="seconds between two bytes of the slow receiver")
    parser.add_argument("--send-timeout", default=None, help="delivery.send_timeout (default: the product's)")
    parser.add_argument("--limit", type=float, default=600, help="longest wait for anything, in seconds")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FeedServer() as feeds,
        WebhookReceiver() as slow,
        WebhookReceiver() as fast,
    ):
        slow.trickle(args.trickle)
        feeds.route("/wire.xml", rss(*BACKLOG))
        delivery = {"interval": "1s", "retry_initial": "30s", "retry_max": "1h"}
        if args.send_timeout:
            delivery["send_timeout"] = args.send_timeout
        config = write_config(
            Path(tmp) / "config",
            feeds=[{"name": "wire", "url": feeds.url("/wire.xml"), "alert_first_fetch": True}],
            channels={"slow": {"url": slow.json_url("/slow")}, "fast": {"url": fast.json_url("/fast")}},
            rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["slow", "fast"]}],
            delivery=delivery,
        )
        log = Path(tmp) / "daemon.log"
        with log.open("ab") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)], stdout=out, stderr=out, cwd=REPO
            )
        try:
            wait(lambda: len(fast.requests) >= 3 and slow.requests, "the backlog to reach both receivers", args.limit)
            feeds.route("/wire.xml", rss(LATER, *BACKLOG))
            published = time.monotonic()
            wait(
                lambda: any(LATER.title in (r.json or {}).get("title", "") for r in fast.requests),
                "the later story at the fast receiver",
                args.limit,
            )
            healthy = time.monotonic() - published
            print(f"healthy channel: later story's alert arrived {healthy:.1f}s after it was published")
            daemon.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            try:
                code = daemon.wait(timeout=args.limit)
            except subprocess.TimeoutExpired:
                code = None
            exit_time = time.monotonic() - stopping
            print(f"SIGTERM during a trickle: exited ({code}) after {exit_time:.1f}s")
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
        with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
            rows = conn.execute(
                "SELECT channel, status, attempts, count(*) FROM alerts GROUP BY channel, status, attempts"
            ).fetchall()
        print("outbox after exit:", ", ".join(f"{ch} {st} (attempts {a}) x{n}" for ch, st, a, n in rows))
        print(f"slow receiver saw {len(slow.requests)} requests, fast receiver {len(fast.requests)}")


if __name__ == "__main__":
    main()
