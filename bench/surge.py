"""What surge checks cost on a large history: the first check, a check per poll, and `rules test`.

Builds (once, then reuses) a SQLite database of --items stored items over the
last 8 days (about 500 an hour at 100,000), each about 120 words, 2% of them
mentioning Putin, all through the real write path (record_poll, in polls of
100 items). Then, with a spike rule on `Putin` (window 1h, baseline 7d):

  - the first check of a rule just added, as the daemon runs it: the history
    evaluated in the HistoryLane (its own thread and connection) while the event
    loop ticks (its longest stall printed), then the check on the loop,
  - the same first check evaluated inline (``poll``-less tools; what the daemon did
    on its loop before): reads and evaluates every item of its lookback,
  - a check after each of 20 polls of 25 new items (one matching), counted from
    the stored matches,
  - the first check of a new process when the rule has been in force for its
    whole lookback (the steady state: stored matches only),
  - the replay of `rules test putin-surge --since 7d` (reading and evaluating
    the history, then the checks at each matching arrival).

    .venv/bin/python bench/surge.py [--items 100000] [--db /tmp/news-monitor-surge-bench/db]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.assembly import load_setup
from monitor.items import Item
from monitor.pipeline import analyse, record_poll
from monitor.rules import surge
from monitor.store import Intent, SurgeWrite, open_storage
from monitor.surges import HistoryLane, SurgeWatch, matching_points

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WORDS = [f"w{n}" for n in range(20_000)]


def config(directory: Path, database: str = "bench.db") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    monitor = {
        "database": str(directory / database),
        "feeds": [{"name": f"feed{i}", "url": f"https://feed{i}.example/rss"} for i in range(50)],
        "web": {"enabled": False},
    }
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    rules = {"rules": [{"name": "putin-surge", "spike": "Putin", "notify": ["console"]}]}
    (directory / "rules.yaml").write_text(json.dumps(rules))
    return directory


def items(rng: random.Random, count: int, start: int) -> list[Item]:
    out = []
    for n in range(start, start + count):
        words = rng.sample(WORDS, 120)
        if rng.random() < 0.02:
            words[rng.randrange(120)] = "Putin"
        out.append(Item(guid=f"g{n}", link=f"https://x.example/{n}", title=" ".join(words[:9]), text=" ".join(words)))
    return out


def build(directory: Path, total: int) -> None:
    setup = load_setup(directory)
    rng = random.Random(1)
    with open_storage(setup.config.settings.database) as store:
        store.sync_feeds(setup.config.feed_specs(), NOW - timedelta(days=9))
        feeds = [store.feed(f"feed{i}").id for i in range(50)]
        batches = total // 100
        for batch in range(batches):
            at = NOW - timedelta(days=8) + (timedelta(days=8) - timedelta(hours=1)) * batch / batches
            fresh = items(rng, 100, batch * 100)
            analysed = analyse(setup, fresh, None, "feed", (), [() for _ in fresh])  # type: ignore[arg-type]
            record_poll(store, setup, feeds[batch % 50], analysed, now=at, feed=None)


async def first_check_off_loop(setup, store, database: Path) -> None:  # type: ignore[no-untyped-def]
    """The daemon's way: the history in the HistoryLane; the event loop's longest stall meanwhile."""
    watch, lane, jobs = SurgeWatch(), HistoryLane(lambda: open_storage(database)), []
    started = time.perf_counter()
    watch.check(store, setup, NOW, history=jobs.append)
    handed = time.perf_counter() - started
    [job] = jobs
    evaluation = asyncio.ensure_future(lane.evaluate(job))
    stall, ticks, last = 0.0, 0, time.perf_counter()
    while not evaluation.done():
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        stall, ticks, last = max(stall, now - last), ticks + 1, now
    watch.remember(job.name, evaluation.result())
    evaluated = time.perf_counter() - started
    check_started = time.perf_counter()
    watch.check(store, setup, NOW)
    checked = time.perf_counter() - check_started
    lane.close()
    print(
        f"first check off the loop: {handed * 1000:.1f} ms on the loop to hand it over, {evaluated:.2f} s evaluating"
        f" {watch.items_read:,} items in the history lane (loop ticked {ticks:,} times, longest stall"
        f" {stall * 1000:.0f} ms), then {checked * 1000:.1f} ms checking on the loop"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/news-monitor-surge-bench"))
    args = parser.parse_args()
    directory = config(args.db / str(args.items))
    if not (directory / "bench.db").exists():
        started = time.perf_counter()
        build(directory, args.items)
        print(f"built {args.items:,} items in {time.perf_counter() - started:.0f} s")
    # Each run starts from the history as built: a copy of it.
    for suffix in ("", "-wal", "-shm"):
        (directory / f"run.db{suffix}").unlink(missing_ok=True)
    with sqlite3.connect(directory / "bench.db") as source, sqlite3.connect(directory / "run.db") as copy:
        source.backup(copy)
    setup = load_setup(config(directory, "run.db"))
    book = setup.rulebook
    rule, spec = book.compiled["putin-surge"], book.surges["putin-surge"].spec
    with open_storage(setup.config.settings.database) as store:
        asyncio.run(first_check_off_loop(setup, store, setup.config.settings.database))
        watch = SurgeWatch()
        started = time.perf_counter()
        watch.check(store, setup, NOW)
        first = time.perf_counter() - started
        print(
            f"first check inline: {first * 1000:.0f} ms ({watch.items_read:,} items of the lookback read and evaluated)"
        )

        rng = random.Random(2)
        per_poll = []
        for poll in range(20):
            at = NOW + timedelta(minutes=poll + 1)
            fresh = items(rng, 25, 10_000_000 + poll * 25)
            fresh[0] = Item(
                guid=f"p{poll}", link=f"https://p.example/{poll}", title=f"Putin {poll}", text=fresh[0].text
            )
            analysed = analyse(setup, fresh, None, "feed0", (), [() for _ in fresh])  # type: ignore[arg-type]
            record_poll(store, setup, store.feed("feed0").id, analysed, now=at, feed=None)
            started = time.perf_counter()
            watch.check(store, setup, at)
            per_poll.append(time.perf_counter() - started)
        print(
            f"check per poll (25 new items): median {statistics.median(per_poll) * 1000:.1f} ms,"
            f" max {max(per_poll) * 1000:.1f} ms"
        )

        # A rule in force for longer than its lookback: a new process counts from the stored matches alone.
        record = store.surge_states()["putin-surge"]
        at = NOW + timedelta(minutes=30)
        store.write(Intent(at, surges=(SurgeWrite(replace(record, matching_since=NOW - timedelta(days=9))),)))
        watch = SurgeWatch()
        started = time.perf_counter()
        watch.check(store, setup, at)
        print(
            f"first check of a process, rule in force for a lookback: {(time.perf_counter() - started) * 1000:.1f} ms"
            f" ({watch.items_read:,} items evaluated)"
        )

        started = time.perf_counter()
        history = store.iter_items(since=NOW - timedelta(days=7) - spec.lookback)
        points, read, _ = matching_points(rule, history, book.lexicon)
        evaluated = time.perf_counter() - started
        started = time.perf_counter()
        firings = surge.replay(points, spec, store.first_seen(), since=NOW - timedelta(days=7))
        replayed = time.perf_counter() - started
        print(
            f"rules test --since 7d: {evaluated:.2f} s reading and evaluating {read:,} items,"
            f" {replayed * 1000:.0f} ms replaying {len(points):,} matching arrivals ({len(firings)} surges)"
        )


if __name__ == "__main__":
    main()
