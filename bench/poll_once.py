"""Wall time of `news-monitor poll --once` over local feeds, and the daemon's peak memory.

Serves FEEDS realistic RSS feeds (30 items each, bench/corpus.py texts) from a
local HTTP server with a little random latency, then measures, with the real
CLI in a subprocess:

1. the first `poll --once` (every item new: fetch, parse, entities, rules, store),
2. a second `poll --once` where every feed answers 304 Not Modified,
3. `news-monitor run` for a while as feeds gain new items: its peak resident memory.

    .venv/bin/python bench/poll_once.py [--feeds 25] [--daemon-seconds 30]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))

from corpus import news_corpus, rss_feed  # noqa: E402
from feedserver import FeedServer  # noqa: E402

ITEMS_PER_FEED = 30


def write_config(directory: Path, server: FeedServer, feeds: int) -> None:
    rules = {"rules": [
        {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["log"]},
        {"name": "ukraine-peace", "query": 'place:Ukraine AND ("peace talks" OR ceasefire OR negotiat*)', "notify": ["log"]},
    ]}  # fmt: skip
    monitor = {
        "database": str(directory / "bench.db"),
        "poll": {"default_interval": "2s", "min_interval": "2s"},
        # A json:// channel pointed at a closed port: delivery is attempted and
        # retried like a real one, without flooding the console.
        "channels": {"log": {"url": "json://127.0.0.1:9/alerts"}},
        "delivery": {"retry_initial": "1h", "retry_max": "1h"},
        "feeds": [{"name": f"feed-{n}", "url": server.url(f"/feed-{n}.xml")} for n in range(feeds)],
    }
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    (directory / "rules.yaml").write_text(json.dumps(rules))
    (directory / "entities.yaml").write_text((REPO / "config" / "entities.yaml").read_text())


def cli(*args: str, config: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    return time.perf_counter() - started, result


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=25)
    parser.add_argument("--daemon-seconds", type=float, default=30)
    args = parser.parse_args()

    rng = random.Random(5)
    corpus = news_corpus(args.feeds * ITEMS_PER_FEED * 2, seed=3)
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp)
        total_bytes = 0
        for n in range(args.feeds):
            body = rss_feed(f"feed-{n}", corpus[n * ITEMS_PER_FEED : (n + 1) * ITEMS_PER_FEED])
            total_bytes += len(body)
            server.route(f"/feed-{n}.xml", body, etag=f'"{n}-v1"', delay=rng.uniform(0.01, 0.15))
        write_config(config, server, args.feeds)

        first_wall, first = cli("poll", "--once", config=config)
        assert first.returncode == 0, first.stderr
        second_wall, second = cli("poll", "--once", config=config)
        assert second.returncode == 0, second.stderr
        cli_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        items = args.feeds * ITEMS_PER_FEED
        print(f"feeds: {args.feeds}, items: {items}, bytes served: {total_bytes / 1e6:.1f} MB")
        print(f"poll --once, first (all items new): {first_wall:6.2f} s wall, {items / first_wall:6.0f} items/s")
        print(f"poll --once, second (all 304):      {second_wall:6.2f} s wall")
        print("  (each run includes interpreter start-up and loading the spaCy model)")
        print(f"poll --once peak RSS:               {cli_peak:6.0f} MiB")

        daemon = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
        )
        deadline = time.monotonic() + args.daemon_seconds
        round_ = 0
        while time.monotonic() < deadline:
            # Every 5 s, a third of the feeds gain five new stories.
            time.sleep(5)
            round_ += 1
            for n in range(round_ % 3, args.feeds, 3):
                stories = corpus[args.feeds * ITEMS_PER_FEED + (n * 7 + round_ * 5) % (args.feeds * ITEMS_PER_FEED - 35) :][:5]
                base = corpus[n * ITEMS_PER_FEED : (n + 1) * ITEMS_PER_FEED - 5]
                server.route(f"/feed-{n}.xml", rss_feed(f"feed-{n}", stories + base, offset=round_ * 1000), etag=f'"{n}-v{round_ + 1}"')
        peak = peak_rss_mib(daemon.pid)
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=60)
        print(f"daemon: {args.daemon_seconds:.0f} s, {round_} rounds of new items, exit {code}, peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
