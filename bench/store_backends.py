"""The store on SQLite and on PostgreSQL, side by side: writes, snapshots, search, the outbox.

One process, one store object per backend (as one daemon has), the same work on each:

1. POLLS polls written through ``Storage.write``, each a snapshot read first (known items,
   story candidates, pacing history) and then one transaction of ITEMS new items (realistic
   news texts from bench/corpus.py, three entity mentions each, one item in ten matched and
   alerted on two channels): items written per second, and the snapshot's median time;
2. full-text search: 20 queries over what was written, median time per query;
3. the outbox: every alert claimed, marked sent, one at a time as delivery does: alerts per second.

PostgreSQL is Debian's package, started here in a temporary directory as tests/postgres.py
starts it, but durable (fsync on, as in production); SQLite is a WAL file with synchronous=NORMAL,
as the daemon opens it. Both on the same disk, over the loopback for PostgreSQL.

    .venv/bin/python bench/store_backends.py [--polls 200] [--items 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from corpus import news_corpus  # noqa: E402
from postgres import PostgresServer, find_bin_dir  # noqa: E402

from monitor.items import FeedSpec, Item, Mention  # noqa: E402
from monitor.store import (  # noqa: E402
    AlertStatus,
    AlertWrite,
    FeedWrite,
    Intent,
    ItemWrite,
    MatchWrite,
    SqliteStorage,
    Storage,
    StoryInfo,
)
from monitor.store.postgres import PostgresStorage  # noqa: E402

START = datetime(2026, 11, 27, tzinfo=UTC)
FEEDS = 50
QUERIES = ["minister", "ceasefire", "central bank", '"prime minister"', "elect*", "title:talks", "Kyiv OR Moscow",
           "oil NOT gas", "summit", "budget", "court", "protest", "inflation", "Beijing", "election", "trade",
           "strike", "vote", "rates", "police"]  # fmt: skip


def workload(store: Storage, polls: int, items: int, corpus: list[tuple[str, str]]) -> dict[str, float]:
    store.sync_feeds([FeedSpec(f"feed-{n}", f"http://127.0.0.1/feed-{n}.xml") for n in range(FEEDS)], START)
    feeds = {feed.name: feed.id for feed in store.feeds()}
    snapshots: list[float] = []
    written = 0
    started = time.perf_counter()
    for poll in range(polls):
        now = START + timedelta(minutes=poll)
        feed_id = feeds[f"feed-{poll % FEEDS}"]
        batch = []
        for k in range(items):
            title, text = corpus[(poll * items + k) % len(corpus)]
            guid = f"p{poll}-{k}"
            words = text.split()
            mentions = tuple(Mention(w, w, "PERSON", "text", 0, len(w)) for w in words[:3])
            alerted = (poll * items + k) % 10 == 0
            batch.append(
                ItemWrite(
                    feed_id,
                    Item(guid, f"https://news.example/{guid}", title, text, published_at=now),
                    story=StoryInfo(None, bytes(16), (f"mh{k % 4}:{guid}",)),
                    mentions=mentions,
                    matches=(MatchWrite("r", ()),) if alerted else (),
                    alerts=(AlertWrite("r", "mail", AlertStatus.PENDING), AlertWrite("r", "slack", AlertStatus.PENDING))
                    if alerted
                    else (),
                )
            )
        t = time.perf_counter()
        with store.transaction():
            store.snapshot(
                feed_id=feed_id, item_keys=[w.item.key for w in batch], story_keys=[k for w in batch for k in w.story.keys],
                since=now - timedelta(days=3), pairs=[("r", "mail"), ("r", "slack")], now=now,
            )  # fmt: skip
            snapshots.append(time.perf_counter() - t)
            store.write(
                Intent(now, tuple(batch), FeedWrite(feed_id, now, now + timedelta(minutes=10), "x", None, None, None))
            )
        written += len(batch)
    write_wall = time.perf_counter() - started
    searches = []
    for query in QUERIES:
        t = time.perf_counter()
        store.search(query, limit=20)
        searches.append(time.perf_counter() - t)
    end = START + timedelta(minutes=polls + 1)
    sent = 0
    t = time.perf_counter()
    while due := store.due_alerts(end, limit=50):
        for alert in due:
            if store.claim_alerts([alert.id], "bench", end, end + timedelta(minutes=1)):
                store.mark_sent(alert.id, end)
                sent += 1
    outbox_wall = time.perf_counter() - t
    return {
        "items/s written": written / write_wall,
        "snapshot ms (median)": statistics.median(snapshots) * 1000,
        "search ms (median)": statistics.median(searches) * 1000,
        "alerts/s claimed+sent": sent / outbox_wall if outbox_wall else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    corpus = news_corpus(2000, seed=9)
    bin_dir = find_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL is not installed (scripts/install-postgresql)")
    server = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="news-monitor-bench-pg-")), durable=True)
    results: dict[str, list[dict[str, float]]] = {"SQLite": [], "PostgreSQL": []}
    try:
        server.start()
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as directory, SqliteStorage.open(Path(directory) / "bench.db") as store:
                results["SQLite"].append(workload(store, args.polls, args.items, corpus))
            server.execute(f"CREATE DATABASE bench_{run}")
            with PostgresStorage.open(server.dsn(f"bench_{run}")) as store:
                results["PostgreSQL"].append(workload(store, args.polls, args.items, corpus))
    finally:
        server.stop()
    print(f"{args.polls} polls of {args.items} items, {args.runs} runs (min-max)")
    for name in results["SQLite"][0]:
        cells = []
        for backend, runs in results.items():
            values = [run[name] for run in runs]
            cells.append(f"{backend} {min(values):,.1f}-{max(values):,.1f}")
        print(f"  {name:<24} " + "   ".join(cells))


if __name__ == "__main__":
    main()
