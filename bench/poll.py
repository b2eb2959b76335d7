"""One poll cycle over 1,000 feeds, against a naive sequential baseline.

Serves FEEDS distinct RSS feeds (20 items each, 60–250-word news texts from
bench/corpus.py, so about 25 KB per feed) from a local HTTP server that waits a
random LATENCY before answering, then measures in this one process:

1. news-monitor's first poll cycle over every feed (fetch, parse, store; the
   first fetch of a feed is stored at once and its entities come later),
   with the spaCy model loaded as in the daemon: wall time, CPU time, feeds/s;
2. the enrichment of that first fetch (entities, matches, stories), which the
   daemon does in the background after the cycle;
3. a second cycle in which every feed answers 304 Not Modified;
4. the baseline: a sequential loop of feedparser.parse(url) over the same feeds.

The feed server runs in a process of its own. Peak memory is this process's
maximum resident set after 1–3. All feeds sit on
one host here, so the per-host limit is raised to the overall concurrency (the
default of 4 per host is for politeness towards real publishers).

    .venv/bin/python bench/poll.py [--feeds 1000] [--latency 0.05-0.25] [--skip-enrich]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
# As the CLI does: one BLAS thread, since entities run in one worker thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import feedparser  # noqa: E402
from corpus import news_corpus, rss_feed  # noqa: E402
from feedserver import FeedServer  # noqa: E402

ITEMS_PER_FEED = 20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_config(directory: Path, port: int, feeds: int) -> Path:
    monitor = {
        "database": str(directory / "bench.db"),
        "poll": {"concurrency": 32, "per_host": 32, "timeout": "30s"},
        "feeds": [{"name": f"feed-{n}", "url": f"http://127.0.0.1:{port}/feed-{n}.xml"} for n in range(feeds)],
    }
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    (directory / "rules.yaml").write_text(
        json.dumps({"rules": [{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}]})
    )
    (directory / "entities.yaml").write_text((REPO / "config" / "entities.yaml").read_text())
    return directory


async def our_cycles(config_dir: Path, enrich: bool) -> dict[str, float]:
    from monitor.assembly import load_setup
    from monitor.daemon import Monitor
    from monitor.pipeline import enrich_backlog, poll_feeds
    from monitor.store import open_storage

    setup = load_setup(config_dir)
    started = time.perf_counter()
    monitor = Monitor(setup, open_storage(setup.config.settings.database))
    figures = {"startup": time.perf_counter() - started}
    try:
        feeds = monitor.store.feeds()
        wall, cpu = time.perf_counter(), time.process_time()
        reports = await poll_feeds(monitor.runtime, feeds)
        figures["first_wall"] = time.perf_counter() - wall
        figures["first_cpu"] = time.process_time() - cpu
        figures["first_failed"] = sum(not r.ok for r in reports)
        figures["items"] = monitor.store.count("items")
        if enrich:
            wall = time.perf_counter()
            while await enrich_backlog(monitor.runtime, batch=256):
                pass
            figures["enrich_wall"] = time.perf_counter() - wall
        for feed in feeds:  # due again now, without waiting for the schedule
            monitor.store.db.execute("UPDATE feeds SET next_poll_at = NULL WHERE id = ?", [feed.id])
        wall, cpu = time.perf_counter(), time.process_time()
        reports = await poll_feeds(monitor.runtime, monitor.store.feeds())
        figures["second_wall"] = time.perf_counter() - wall
        figures["second_cpu"] = time.process_time() - cpu
        figures["second_not_modified"] = sum(r.not_modified for r in reports)
    finally:
        await monitor.close()
    return figures


def baseline(port: int, feeds: int) -> tuple[float, int]:
    started = time.perf_counter()
    entries = 0
    for n in range(feeds):
        entries += len(feedparser.parse(f"http://127.0.0.1:{port}/feed-{n}.xml").entries)
    return time.perf_counter() - started, entries


def serve(feeds: int, low: float, high: float, answers: multiprocessing.Queue[tuple[int, int]]) -> None:
    """In the server process: serve the feeds until terminated; report (port, bytes served)."""
    rng = random.Random(42)
    corpus = news_corpus(2000, seed=9)
    server = FeedServer().start()
    size = 0
    for n in range(feeds):
        stories = [corpus[(n * 7 + k * 13) % len(corpus)] for k in range(ITEMS_PER_FEED)]
        body = rss_feed(f"feed-{n}", stories, spacing=timedelta(hours=3))
        size += len(body)
        server.route(f"/feed-{n}.xml", body, etag=f'"feed-{n}-v1"', delay=rng.uniform(low, high))
    answers.put((server.port, size))
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency", default="0.05-0.25", help="seconds, uniform between two bounds")
    parser.add_argument("--skip-enrich", action="store_true", help="do not measure the enrichment")
    args = parser.parse_args()
    low, high = (float(x) for x in args.latency.split("-"))

    # The feed server runs in a process of its own, as feed servers do: in this
    # one its threads would compete with the code measured for the interpreter lock.
    context = multiprocessing.get_context("spawn")
    answers: multiprocessing.Queue[tuple[int, int]] = context.Queue()
    server_process = context.Process(target=serve, args=(args.feeds, low, high, answers), daemon=True)
    server_process.start()
    port, size = answers.get(timeout=120)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp), port, args.feeds)
            print(f"{args.feeds} feeds x {ITEMS_PER_FEED} items, {size / args.feeds / 1024:.0f} KiB per feed, "
                  f"latency {low * 1000:.0f}-{high * 1000:.0f} ms")  # fmt: skip
            ours = asyncio.run(our_cycles(config, enrich=not args.skip_enrich))
            peak = peak_mib()
            base_wall, base_entries = baseline(port, args.feeds)
    finally:
        server_process.terminate()

    first_rate = args.feeds / ours["first_wall"]
    base_rate = args.feeds / base_wall
    print(f"start-up (config, database, spaCy model): {ours['startup']:.2f} s")
    print(f"first cycle:  {ours['first_wall']:7.2f} s wall  {ours['first_cpu']:7.2f} s CPU  "
          f"{first_rate:7.1f} feeds/s  ({ours['items']:.0f} items stored, {ours['first_failed']:.0f} feeds failed)")  # fmt: skip
    if "enrich_wall" in ours:
        print(f"  then enrichment of the first fetch (entities, matches, stories): {ours['enrich_wall']:.2f} s "
              f"({ours['items'] / ours['enrich_wall']:.0f} items/s)")  # fmt: skip
    print(f"304 cycle:    {ours['second_wall']:7.2f} s wall  {ours['second_cpu']:7.2f} s CPU  "
          f"{args.feeds / ours['second_wall']:7.1f} feeds/s  ({ours['second_not_modified']:.0f} not modified)")  # fmt: skip
    print(f"baseline:     {base_wall:7.2f} s wall  {base_rate:7.1f} feeds/s  "
          f"(sequential feedparser.parse(url), {base_entries} entries)")  # fmt: skip
    print(f"first cycle vs baseline: {first_rate / base_rate:.1f}x feeds/s")
    print(f"peak memory (RSS) with the spaCy model loaded: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
