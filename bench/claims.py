"""`poll --once` beside a running daemon, one outbox: how many of 40 alerts arrive twice.

The receiver holds its answers until both processes have a send in flight (so both
deliver from the outbox at the same time, whatever the machine's speed), then answers
everything; the alerts received are counted by title.

    .venv/bin/python bench/claims.py [--alerts 40]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from conftest import Story, cli_env, rss, write_config  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from receivers import WebhookReceiver  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=40)
    args = parser.parse_args()
    stories = [
        Story(f"s-{n}", f"Ceasefire holds in region {n}", f"Monitors said it held in region {n}.")
        for n in range(args.alerts)
    ]
    with tempfile.TemporaryDirectory() as tmp, FeedServer() as feeds, WebhookReceiver() as hook:
        feeds.route("/wire.xml", rss(*stories))
        config = write_config(
            Path(tmp) / "config",
            feeds=[{"name": "wire", "url": feeds.url("/wire.xml"), "alert_first_fetch": True}],
            channels={"hook": {"url": hook.json_url("/hook")}},
            rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
            delivery={"send_timeout": "10m"},
        )
        hook.hold_answers()
        log = (Path(tmp) / "daemon.log").open("ab")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)], stdout=log, stderr=log
        )
        try:
            hook.wait_for(1, timeout=120)
            once = subprocess.Popen(
                [sys.executable, "-m", "monitor", "poll", "--once", "--config", str(config)],
                stderr=subprocess.PIPE, text=True, env=cli_env(),
            )  # fmt: skip
            hook.wait_for(2, timeout=120)
            hook.answer()
            _, stderr = once.communicate(timeout=300)
            deadline = time.monotonic() + 120
            while len(set(r.json["title"] for r in hook.requests)) < args.alerts and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(3)  # let a repeat still in flight arrive
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
        received = Counter(r.json["title"] for r in hook.requests)
        found = re.search(r"delivered (\d+)", stderr)
        print(f"poll --once delivered {found.group(1) if found else '?'}")
        print(
            f"{args.alerts} alerts: {len(received)} distinct received, {sum(1 for n in received.values() if n > 1)} "
            f"received more than once, {sum(received.values())} requests in all"
        )


if __name__ == "__main__":
    main()
