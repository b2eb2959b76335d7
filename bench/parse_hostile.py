"""Hostile feeds against the parser: time and size of what comes out.

Each probe runs in a fresh process, so its peak memory is its own:

- ``html_to_text("<a " * N)`` for N = 1,000, 8,000 and 16,000 (unclosed tags);
- a 96 KB RSS feed whose description is ``&lt;a `` x 16,000 (the same markup, escaped);
- a 105 KB feed with a stray ``<`` line before a DOCTYPE that declares an entity
  used 34,000 times (the entity guard bypass), in UTF-8 and in UTF-16;
- a 1 MB title with NUL bytes and a right-to-left override.

    .venv/bin/python bench/parse_hostile.py [--only NAME] [--timeout 120]

Prints one line per probe: seconds, the longest field parsed, peak memory of the process.

With ``--daemon KIND`` it measures instead what a hostile feed costs the others:
the real daemon polls a normal feed beside ``KIND`` (``none``, ``escaped``: the
96 KB feed above, ``large``: 9 MB of ordinary items, several seconds of
parsing), and for each of ``--stories`` stories published on the normal feed
it prints the time from publication to the alert at a webhook receiver.

    .venv/bin/python bench/parse_hostile.py --daemon large [--parse-timeout 2s]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def html_probe(n: int) -> str:
    return f"html_to_text('<a ' * {n:,})"


def escaped_feed() -> bytes:
    description = "&lt;a " * 16_000
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>one</title><link>https://x.example/1</link><description>{description}</description></item>"
        "</channel></rss>"
    ).encode()


def entity_feed(encoding: str = "utf-8") -> bytes:
    entity = "A" * 3000
    refs = "&e;" * 34_000
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n< \n<!DOCTYPE rss [\n<!ENTITY e "{entity}">\n]>\n'
        f'<rss version="2.0"><channel><title>t</title><item><title>{refs}</title>'
        "<link>https://x.example/1</link></item></channel></rss>"
    )
    return text.encode("utf-16") if encoding == "utf-16" else text.encode()


def dirty_title_feed() -> bytes:
    title = "Breaking\x00 news \u202egnp.exe\u202c " + "x" * 1_000_000
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<item><title>{title}</title><link>https://x.example/1</link><description>body</description></item>"
        "</channel></rss>"
    ).encode()


PROBES = {
    "html-1000": ("html", 1_000),
    "html-8000": ("html", 8_000),
    "html-16000": ("html", 16_000),
    "escaped-feed": ("feed", "escaped"),
    "entity-bypass": ("feed", "entity"),
    "entity-bypass-utf16": ("feed", "entity16"),
    "dirty-title": ("feed", "dirty"),
}


def run_probe(name: str) -> dict[str, object]:
    """Runs in the child process."""
    import resource

    from monitor.feeds.html_text import html_to_text
    from monitor.feeds.parse import parse_feed

    kind, arg = PROBES[name]
    started = time.perf_counter()
    if kind == "html":
        html = "<a " * int(arg)
        text = html_to_text(html)
        longest, size = len(text), len(html)
    else:
        body = {"escaped": escaped_feed, "entity": entity_feed, "dirty": dirty_title_feed}.get(str(arg))
        content = body() if body else entity_feed("utf-16")
        parsed = parse_feed(content, url="https://x.example/rss", content_type="application/rss+xml")
        fields = [len(item.title) for item in parsed.items] + [len(item.text) for item in parsed.items]
        longest, size = max(fields, default=0), len(content)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return {"probe": name, "input_bytes": size, "seconds": round(seconds, 3), "longest_field": longest, "peak_mb": peak}


def large_feed() -> bytes:
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import Story, rss

    return rss(
        *[Story(f"l-{n}", f"Story number {n} " * 4, "Body <b>text</b> of the story. " * 25) for n in range(6_000)]
    )


def daemon_latency(kind: str, stories: int, parse_timeout: str | None) -> None:
    """Alert latency of a normal feed while the daemon also polls a hostile one."""
    import statistics
    import tempfile

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import Story, rss, write_config
    from feedserver import FeedServer
    from receivers import WebhookReceiver

    hostile = {"none": None, "escaped": escaped_feed, "large": large_feed}[kind]
    with FeedServer() as server, WebhookReceiver() as receiver, tempfile.TemporaryDirectory() as tmp:
        served = [Story("w-0", "Markets open higher", "Shares rose.")]
        server.route("/wire.xml", rss(*served))
        feeds = [{"name": "wire", "url": server.url("/wire.xml")}]
        if hostile is not None:
            server.route("/hostile.xml", hostile())
            feeds.append({"name": "hostile", "url": server.url("/hostile.xml")})
        poll = {"parse_timeout": parse_timeout} if parse_timeout else {}
        config = write_config(
            Path(tmp) / "config",
            feeds=feeds,
            channels={"hook": {"url": receiver.json_url("/hook")}},
            rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
            poll=poll,
        )
        log = Path(tmp) / "daemon.log"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with log.open("ab") as out:
            daemon = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                stdout=out,
                stderr=out,
                cwd=REPO,
                env=env,
            )
        try:
            deadline = time.monotonic() + 120
            while "poll.done feed=wire" not in log.read_text(errors="replace"):
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit(f"the daemon did not poll the wire:\n{log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.1)
            latencies = []
            for n in range(1, stories + 1):
                served = [Story(f"w-{n}", f"Ceasefire holds in region {n}", "Monitors said so."), *served]
                server.route("/wire.xml", rss(*served))
                published = time.time()
                deadline = time.monotonic() + 300
                while len(receiver.requests) < n and time.monotonic() < deadline:
                    time.sleep(0.02)
                if len(receiver.requests) < n:
                    raise SystemExit(f"no alert for story {n} within 300 s")
                latencies.append(receiver.requests[n - 1].received_at - published)
                time.sleep(1)
        finally:
            daemon.terminate()
            daemon.wait(timeout=120)
        text = log.read_text(errors="replace")
    cut_off = text.count("parsing took longer than")
    print(
        f"beside: {kind:<8} parse_timeout: {parse_timeout or 'none':<5} alerts: {len(latencies)}  "
        f"latency median {statistics.median(latencies):.2f} s, max {max(latencies):.2f} s; "
        f"hostile feed cut off {cut_off} times"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(PROBES), action="append")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--daemon", choices=["none", "escaped", "large"])
    parser.add_argument("--stories", type=int, default=5)
    parser.add_argument("--parse-timeout", help="poll.parse_timeout for --daemon (omit where it does not exist)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_probe(args.child)))
        return
    if args.daemon:
        daemon_latency(args.daemon, args.stories, args.parse_timeout)
        return
    print(f"{'probe':<22} {'input':>10} {'seconds':>9} {'longest field':>14} {'peak MB':>8}")
    for name in args.only or PROBES:
        try:
            done = subprocess.run(
                [sys.executable, __file__, "--child", name],
                capture_output=True,
                text=True,
                timeout=args.timeout,
                cwd=REPO,
            )
        except subprocess.TimeoutExpired:
            print(f"{name:<22} {'':>10} {'>' + str(int(args.timeout)):>9} {'(gave up)':>14}")
            continue
        if done.returncode != 0:
            print(f"{name:<22} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout)
        print(
            f"{name:<22} {row['input_bytes']:>10,} {row['seconds']:>9.3f} {row['longest_field']:>14,} {row['peak_mb']:>8}"
        )


if __name__ == "__main__":
    main()
