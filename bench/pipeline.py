"""Items per second through entities + rules + decide-and-store, the CPU-bound heart of a poll.

Feeds 1,000 realistic news items (bench/corpus.py) through the same stages a
poll runs after parsing: spaCy entity extraction (batched), rule matching with
the shipped rules plus 200 generated ones, story fingerprints, and the
one-transaction snapshot, decision and write, in polls of 25 items, into a
real SQLite file. Prints the time per stage ("stories" is new in this round:
the totals are printed with and without it, to compare with older runs).

    .venv/bin/python bench/pipeline.py [--items 1000]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# As the CLI does: one BLAS thread, since entities run in one worker thread.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corpus import news_corpus  # noqa: E402

from monitor.assembly import assemble  # noqa: E402
from monitor.config import RuleConfig, load_config  # noqa: E402
from monitor.decide import Analysed, story_info  # noqa: E402
from monitor.entities import EntityExtractor, load_pipeline  # noqa: E402
from monitor.items import FeedSpec, Item  # noqa: E402
from monitor.pipeline import record_poll  # noqa: E402
from monitor.rules.document import Document  # noqa: E402
from monitor.store import FeedWrite, open_storage  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BATCH = 25  # items per simulated poll
NAMES = ["Putin", "Xi", "Zelensky", "Macron", "Scholz", "Modi", "Erdogan", "Lula", "Biden", "Trump"]
PLACES = ["Ukraine", "China", "Russia", "Gaza", "Taiwan", "Iran", "Brazil", "India", "France", "Germany"]
WORDS = ['"peace talks"', "ceasefire", "sanctions", "negotiat*", "election", "summit", "tariff*", "drone*"]


def generated_rules(count: int, rng: random.Random) -> list[RuleConfig]:
    rules = []
    for n in range(count):
        shape = n % 4
        if shape == 0:
            query = f"{rng.choice(NAMES)} AND {rng.choice(NAMES)}"
        elif shape == 1:
            query = f"person:{rng.choice(NAMES)} AND place:{rng.choice(PLACES)}"
        elif shape == 2:
            query = f"({rng.choice(WORDS)} OR {rng.choice(WORDS)}) AND {rng.choice(PLACES)} AND NOT sport"
        else:
            query = f'title:{rng.choice(PLACES)} "{rng.choice(NAMES)} said"'
        rules.append(RuleConfig(name=f"rule-{n}", query=query, notify=("console",)))
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument(
        "--no-stories", action="store_true", help="skip story fingerprints and joins (as benchmarks before stories did)"
    )
    args = parser.parse_args()

    config = load_config(REPO / "config", environ={})
    rules = list(config.rules) + generated_rules(200, random.Random(7))
    config = dataclasses.replace(config, rules=tuple(rules))
    setup = assemble(config)
    rulebook = setup.rulebook
    started = time.perf_counter()
    nlp = load_pipeline(config.settings.nlp.model)
    extractor = EntityExtractor(nlp, config.entities)
    load_seconds = time.perf_counter() - started

    texts = news_corpus(args.items, seed=11)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    items = [
        Item(guid=f"bench-{n}", link=f"https://news.example.org/{n}", title=title, text=body, published_at=now)
        for n, (title, body) in enumerate(texts)
    ]
    words = sum(len(title.split()) + len(body.split()) for title, body in texts)

    with tempfile.TemporaryDirectory() as tmp:
        store = open_storage(Path(tmp) / "bench.db")
        store.sync_feeds([FeedSpec("bench", "http://127.0.0.1/bench.xml")], now)
        feed = store.feeds()[0]
        seconds = {"entities": 0.0, "rules": 0.0, "stories": 0.0, "store": 0.0}
        matched = 0
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            t0 = time.perf_counter()
            mentions = extractor.extract([(i.title, i.text) for i in batch])
            t1 = time.perf_counter()
            matches = [rulebook.match(Document.from_item(i, "bench", m)) for i, m in zip(batch, mentions, strict=True)]
            t2 = time.perf_counter()
            infos = [None if args.no_stories else story_info(i) for i in batch]
            t3 = time.perf_counter()
            analysed = [
                Analysed(i, tuple(m), tuple((r.name, tuple(h.to_dict() for h in hits)) for r, hits in found), info)
                for i, m, found, info in zip(batch, mentions, matches, infos, strict=True)
            ]
            written = FeedWrite(feed.id, now, now + timedelta(minutes=10), "bench", None, None, "Bench")
            record_poll(store, setup, feed.id, analysed, now=now, feed=written)
            t4 = time.perf_counter()
            seconds["entities"] += t1 - t0
            seconds["rules"] += t2 - t1
            seconds["stories"] += t3 - t2
            seconds["store"] += t4 - t3
            matched += sum(len(m) for m in matches)
        alerts = store.count("alerts")
        store.close()

    total = sum(seconds.values())
    print(f"items: {len(items)} ({words} words), rules: {len(rules)}, polls of {BATCH} items")
    print(f"model load: {load_seconds:.2f} s (ner only)")
    for stage, value in seconds.items():
        print(f"  {stage:9s} {value:7.2f} s  {len(items) / value:9.0f} items/s  {value / len(items) * 1e3:6.2f} ms/item")
    print(f"  {'total':9s} {total:7.2f} s  {len(items) / total:9.0f} items/s")
    comparable = total - seconds["stories"]
    print(f"  {'total without stories':9s} {comparable:7.2f} s  {len(items) / comparable:9.0f} items/s")
    print(f"matches: {matched}, alerts queued: {alerts}")


if __name__ == "__main__":
    main()
