"""What the dashboard costs on a large history: time to first byte per page, the rule tester per keystroke,
and the daemon's memory with the dashboard on and off.

Builds (once, then reuses) a SQLite database of --items stored items over the last 30 days (about 140 an
hour at 100,000) from the offline news corpus (bench/corpus.py), straight through the store's one write path
(Storage.write): each item with its story fingerprint, entities found by name from a fixed list (no model:
building must be quick), a match and an alert for 1% of them (sent, dead, held or pending). Then:

  - `news-monitor web` on that database: each page fetched 5 times, time to first byte (median, max);
  - the rule tester's results fragment as a query is typed one character at a time (what tester.js asks
    for when each keystroke is its own request: the worst case; it waits 300 ms of quiet first), for an
    entity query and for plain words (over the newest 5,000 items of 7 days: plain words pick the items to
    evaluate through the full-text index; an entity query evaluates them all);
  - `news-monitor run` on the same config with web.enabled true and false: its RSS once started, the model
    loaded and (dashboard on) every page fetched once.

    .venv/bin/python bench/web.py [--items 100000] [--db /tmp/news-monitor-web-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import news_corpus  # noqa: E402

from monitor.decide import story_info  # noqa: E402
from monitor.items import FeedSpec, Item, Mention  # noqa: E402
from monitor.store import AlertStatus, AlertWrite, FeedWrite, Intent, ItemWrite, MatchWrite, open_storage  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FEEDS = 50
DAYS = 30
NAMES = [
    ("Putin", "Vladimir Putin", "PERSON"), ("Xi Jinping", "Xi Jinping", "PERSON"), ("Zelensky", "Volodymyr Zelensky", "PERSON"),
    ("Biden", "Joe Biden", "PERSON"), ("Macron", "Emmanuel Macron", "PERSON"), ("Ukraine", "Ukraine", "GPE"),
    ("Russia", "Russia", "GPE"), ("China", "China", "GPE"), ("Washington", "Washington", "GPE"),
    ("Moscow", "Moscow", "GPE"), ("Beijing", "Beijing", "GPE"), ("Kyiv", "Kyiv", "GPE"), ("Paris", "Paris", "GPE"),
    ("Reuters", "Reuters", "ORG"), ("OPEC", "OPEC", "ORG"), ("Huawei", "Huawei", "ORG"), ("NATO", "NATO", "ORG"),
    ("International Monetary Fund", "International Monetary Fund", "ORG"), ("European Union", "European Union", "ORG"),
]  # fmt: skip
PAGES = ["", "?status=dead", "rules/test", "rules/test?q=Putin+AND+Xi", "entities", "entities?window=week",
         "entities/items?name=Vladimir+Putin&type=PERSON&window=week", "feeds", "items/{item}"]  # fmt: skip
TYPED = ("person:Putin AND (Xi OR Zelensky)", "Kremlin talks trade")  # an entity query; plain words


def write_config(directory: Path, *, web: bool, port: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    monitor = {
        "database": str(directory.parent / "bench.db"),
        # Feeds nobody answers (a closed local port): the daemon polls and fails quickly, alerts nobody.
        "feeds": [
            {"name": f"feed{i}", "url": f"http://127.0.0.1:9/feed{i}.xml", "interval": "1h"} for i in range(FEEDS)
        ],
        "poll": {"allow_private": True},
        "channels": {"newsroom": {"url": "json://127.0.0.1:9/hook"}},
        "web": {"enabled": web, "port": port},
    }
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    rules = {"rules": [{"name": "putin", "query": "person:Putin", "notify": ["newsroom"]}]}
    (directory / "rules.yaml").write_text(json.dumps(rules))
    (directory / "entities.yaml").write_text(json.dumps({"entities": []}))
    return directory


def mentions_of(title: str, text: str) -> tuple[Mention, ...]:
    found = []
    for field, value in (("title", title), ("body", text)):
        for name, canonical, kind in NAMES:
            start = value.find(name)
            if start != -1:
                found.append(Mention(name, canonical, kind, field, start, start + len(name)))
    return tuple(found)


def build(database: Path, total: int, now: datetime) -> None:
    rng = random.Random(7)
    corpus = news_corpus(total, seed=11)  # each item a text of its own
    states = [AlertStatus.SENT] * 6 + [AlertStatus.DEAD, AlertStatus.HELD, AlertStatus.PENDING, AlertStatus.SUPPRESSED]
    with open_storage(database) as store:
        store.sync_feeds([FeedSpec(f"feed{i}", f"http://127.0.0.1:9/feed{i}.xml") for i in range(FEEDS)], now)
        feeds = [store.feed(f"feed{i}").id for i in range(FEEDS)]
        batch, per_batch = [], 500
        for n in range(total):
            title, text = corpus[n % len(corpus)]
            title = f"{title} ({n})"
            at = now - timedelta(days=DAYS) + timedelta(days=DAYS) * n / total
            item = Item(
                guid=f"g{n}", link=f"https://news{n % FEEDS}.example/{n}", title=title, text=text, published_at=at
            )
            mentions = mentions_of(title, text)
            matches, alerts = (), ()
            putin = next((m for m in mentions if m.canonical == "Vladimir Putin"), None)
            if putin is not None and rng.random() < 0.05:
                hit = {"term": "person:Putin", "field": putin.field, "start": putin.start, "end": putin.end,
                       "matched": putin.text, "entity": "Vladimir Putin"}  # fmt: skip
                matches = (MatchWrite("putin", (hit,)),)
                status = rng.choice(states)
                alerts = (AlertWrite("putin", "newsroom", status if status != AlertStatus.DEAD else AlertStatus.PENDING,
                                     reason="digest" if status == AlertStatus.HELD else None,
                                     release_at=now + timedelta(hours=1) if status == AlertStatus.HELD else None),)  # fmt: skip
            feed = feeds[n % FEEDS]
            batch.append((feed, ItemWrite(feed, item, story=story_info(item), mentions=mentions, matches=matches,
                                          alerts=alerts)))  # fmt: skip
            if len(batch) == per_batch or n == total - 1:
                for feed_id in {feed for feed, _ in batch}:
                    writes = tuple(write for fid, write in batch if fid == feed_id)
                    store.write(
                        Intent(
                            at, writes, FeedWrite(feed_id, at, at + timedelta(hours=1), "every 1h", None, None, None)
                        )
                    )
                batch = []
        for alert in store.list_alerts(status=AlertStatus.PENDING, limit=100_000):
            choice = rng.random()
            if choice < 0.6:
                store.mark_sent(alert.id, now)
            elif choice < 0.7:
                store.mark_failed(alert.id, "HTTP 500 from the receiver", None)


def start(args: list[str], config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWS_MONITOR")}
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "monitor", *args, "--config", str(config)], stdout=out,
                                stderr=out, env=env, cwd=config)  # fmt: skip


def wait_for(log: Path, pattern: str, process: subprocess.Popen[bytes], timeout: float = 300) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text("utf-8", "replace"))
        if found:
            return found
        if process.poll() is not None:
            raise SystemExit(f"exited before {pattern!r}:\n{log.read_text()}")
        time.sleep(0.1)
    raise SystemExit(f"no {pattern!r} within {timeout}s")


def ttfb(client: httpx.Client, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with client.stream("GET", url) as response:
        first = time.perf_counter() - started
        size = sum(len(chunk) for chunk in response.iter_bytes())
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")
    return first, size


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/news-monitor-web-bench"))
    args = parser.parse_args()
    root = args.db / str(args.items)
    root.mkdir(parents=True, exist_ok=True)
    database = root / "bench.db"
    now = datetime.now(UTC)
    if not database.exists():
        started = time.perf_counter()
        build(database, args.items, now)
        print(f"built {args.items:,} items in {time.perf_counter() - started:.0f} s")
    with open_storage(database) as store:
        item = store.list_alerts(limit=1)[0].item_id
        print(f"history: {store.count('items'):,} items, {store.count('entities'):,} entities, "
              f"{store.count('alerts'):,} alerts")  # fmt: skip

    config = write_config(root / "web", web=True)
    log = root / "web.log"
    web = start(["web"], config, log)
    try:
        base = wait_for(log, r"web\.listening url=(\S+)", web).group(1)
        with httpx.Client(timeout=120) as client:
            print("time to first byte (5 fetches; median / max):")
            for page in PAGES:
                path = page.format(item=item)
                times, size = [], 0
                for _ in range(5):
                    first, size = ttfb(client, base + path)
                    times.append(first)
                print(
                    f"  /{path:<58} {statistics.median(times) * 1000:7.0f} ms / {max(times) * 1000:5.0f} ms  ({size:,} bytes)"
                )
            for typed in TYPED:
                keystrokes = []
                for end in range(1, len(typed) + 1):
                    started = time.perf_counter()
                    answer = client.get(base + "rules/test/results", params={"q": typed[:end], "since": "7d"})
                    keystrokes.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.status_code
                print(
                    f"rule tester, {len(typed)} keystrokes of {typed!r} over 7d: "
                    f"median {statistics.median(keystrokes) * 1000:.0f} ms, max {max(keystrokes) * 1000:.0f} ms"
                )
                summary = re.search(r'id="tester-summary">(.*?)</p>', answer.text, re.S)
                if summary:
                    print(f"  last answer: {re.sub('<[^>]+>', '', summary.group(1)).strip()}")
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(timeout=30)

    for enabled in (False, True):
        config = write_config(root / ("daemon-web" if enabled else "daemon-noweb"), web=enabled)
        log = root / f"daemon-{enabled}.log"
        daemon = start(["run"], config, log)
        try:
            wait_for(log, r"nlp\.loaded", daemon)
            if enabled:
                base = wait_for(log, r"web\.listening url=(\S+)", daemon).group(1)
                with httpx.Client(timeout=120) as client:
                    for page in PAGES:
                        client.get(base + page.format(item=item))
            time.sleep(2)
            print(f"daemon RSS, dashboard {'on ' if enabled else 'off'}: {rss_kib(daemon.pid) / 1024:.0f} MiB")
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)


if __name__ == "__main__":
    main()
