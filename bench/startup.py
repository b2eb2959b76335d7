"""Start-up cost where a person waits: `--help`, `check`, and `poll --once` when nothing is new.

Serves N small RSS feeds from a local HTTP server, primes the database with one
`poll --once` (every item new), then times, with the real CLI in a subprocess,
three runs each of:

- `news-monitor --help`
- `news-monitor check`
- `poll --once` where every feed answers 304 Not Modified (ETag validators)
- `poll --once` where every feed answers 200 with the same items (no validators: parsed, nothing new)

    .venv/bin/python bench/startup.py [--feeds 80] [--runs 3] [--repo OTHER-CHECKOUT]

Every feed is on the one local server, so ``poll.per_host`` is raised to let the requests go out
together as they would to 80 hosts (the test server's small responses otherwise wait on TCP's
delayed acknowledgement, 40 ms a round, which measures the server and not the start-up).
``--repo`` runs the CLI of another checkout (``mkdir /tmp/old && git archive HEAD~1 | tar -x -C /tmp/old``), for a before and after.
"""

from __future__ import annotations

import argparse
import json
import os
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

ITEMS_PER_FEED = 10


def write_config(directory: Path, server: FeedServer, feeds: int, prefix: str) -> None:
    rules = {"rules": [
        {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["log"]},
        {"name": "ukraine", "query": "place:Ukraine AND ceasefire", "notify": ["log"]},
    ]}  # fmt: skip
    monitor = {
        "database": str(directory / "bench.db"),
        "channels": {"log": {"url": "json://127.0.0.1:9/alerts"}},
        "poll": {"per_host": 64},
        "feeds": [{"name": f"feed-{n}", "url": server.url(f"/{prefix}-{n}.xml")} for n in range(feeds)],
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    (directory / "rules.yaml").write_text(json.dumps(rules))
    (directory / "entities.yaml").write_text((REPO / "config" / "entities.yaml").read_text())


# As a user's shell runs it: Python writes and reuses its bytecode caches (a shell that sets
# PYTHONDONTWRITEBYTECODE would compile every module on every run, a tenth of a second here).
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def cli(*args: str, config: Path, repo: Path = REPO) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args, *(["--config", str(config)] if args[0] != "--help" else [])],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo,  # `python -m monitor` imports the package from here first
        env=ENV,
    )
    wall = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    return wall


def figures(label: str, walls: list[float]) -> None:
    shown = "  ".join(f"{wall:5.2f}" for wall in walls)
    print(f"{label:<44} {shown}   (best {min(walls):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=80)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout whose CLI runs (default: this one)")
    args = parser.parse_args()
    runs = range(args.runs)

    corpus = news_corpus(args.feeds * ITEMS_PER_FEED, seed=3)
    with FeedServer() as server, tempfile.TemporaryDirectory() as tmp:
        for n in range(args.feeds):
            body = rss_feed(f"feed-{n}", corpus[n * ITEMS_PER_FEED : (n + 1) * ITEMS_PER_FEED])
            server.route(f"/etag-{n}.xml", body, etag=f'"{n}-v1"')
            server.route(f"/plain-{n}.xml", body)
        with_etag, without = Path(tmp) / "etag", Path(tmp) / "plain"
        write_config(with_etag, server, args.feeds, "etag")
        write_config(without, server, args.feeds, "plain")
        prime = cli("poll", "--once", config=with_etag, repo=args.repo)
        cli("poll", "--once", config=without, repo=args.repo)
        print(f"CLI of {args.repo}; feeds: {args.feeds}, {ITEMS_PER_FEED} items each")
        print(f"first poll --once (all new): {prime:.2f} s")
        print(f"{'wall seconds, ' + str(args.runs) + ' runs':<44}")
        figures("news-monitor --help", [cli("--help", config=with_etag, repo=args.repo) for _ in runs])
        figures("news-monitor check", [cli("check", config=with_etag, repo=args.repo) for _ in runs])
        figures("poll --once, every feed 304", [cli("poll", "--once", config=with_etag, repo=args.repo) for _ in runs])
        figures(
            "poll --once, every feed 200 and unchanged",
            [cli("poll", "--once", config=without, repo=args.repo) for _ in runs],
        )


if __name__ == "__main__":
    main()
