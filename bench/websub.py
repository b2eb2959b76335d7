"""From a publish at a WebSub hub to the alert at the receiver, through the real daemon.

A local feed server serves a feed that advertises a local hub (tests/websubhub.py);
the daemon (a subprocess, as `news-monitor run`) polls it once, subscribes, and the
hub verifies. Each run then publishes a new matching story at the hub and measures,
on the wall clock:

* ack: until the daemon answered the hub's POST (the push is parsed, analysed and stored);
* alert: until the webhook receiver got the alert.

Polls are an hour apart and the feed server never serves the new stories, so only
the push can explain the alerts. Without WebSub the same story waits for the next
poll: up to ``poll.default_interval`` (10 minutes by default) for a busy feed.

    .venv/bin/python bench/websub.py [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from conftest import BACKFILL, DEFAULT_ENTITIES, DaemonProcess, Story, rss, write_config  # noqa: E402
from feedserver import FeedServer  # noqa: E402
from receivers import WebhookReceiver, free_port  # noqa: E402
from websubhub import WebSubHub  # noqa: E402

CALLBACK = "https://news.example.org/websub"
STORIES = [
    Story(
        "push-1",
        "Xi Jinping and Vladimir Putin sign grain corridor accord",
        "Chinese President Xi Jinping and Russian President Vladimir Putin signed an accord on Tuesday "
        "opening a grain corridor through Kazakhstan, officials in Beijing said.",
    ),
    Story(
        "push-2",
        "Putin cancels trip as Xi hosts Central Asian leaders",
        "Vladimir Putin called off a planned visit to Xian, where Xi Jinping welcomed five Central Asian "
        "presidents for talks on railways, water rights and lithium mining.",
    ),
    Story(
        "push-3",
        "Satellite images show new bridge on the Amur before Xi-Putin meeting",
        "Commercial satellite pictures taken on Sunday reveal a finished road bridge over the Amur river, "
        "weeks before Xi and Putin are due to open it at a ceremony in Blagoveshchensk.",
    ),
]


def advertised(body: bytes, hub: str, topic: str) -> bytes:
    links = f"<atom:link rel='hub' href='{hub}'/><atom:link rel='self' href='{topic}'/>"
    return body.replace(
        b"<rss version='2.0'>", b"<rss version='2.0' xmlns:atom='http://www.w3.org/2005/Atom'>"
    ).replace(b"<channel>", b"<channel>" + links.encode(), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, choices=range(1, len(STORIES) + 1))
    args = parser.parse_args()
    port = free_port()
    with (
        tempfile.TemporaryDirectory() as tmp,
        FeedServer() as feeds,
        WebhookReceiver() as webhook,
        WebSubHub(proxy={CALLBACK: f"http://127.0.0.1:{port}/websub"}) as hub,
    ):
        topic = feeds.url("/wire.xml")
        feeds.route("/wire.xml", advertised(rss(*BACKFILL), hub.url, topic), etag='"v1"')
        config = write_config(
            Path(tmp) / "config",
            feeds=[{"name": "wire", "url": topic}],
            channels={"hook": {"url": webhook.json_url("/hook")}},
            rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
            entities=DEFAULT_ENTITIES,
            poll={"min_interval": "1h", "default_interval": "1h", "max_interval": "1h"},
            websub={"callback": CALLBACK, "listen": f"127.0.0.1:{port}"},
        )
        daemon = DaemonProcess(config, Path(tmp) / "daemon.log", webhook).start()
        try:
            hub.wait_for_subscribers(topic, timeout=120)
            daemon.wait_for_log(r"enrich\.done", timeout=120)  # the first fetch's backlog is out of the way
            print(f"subscribed; publishing {args.runs} stories at the hub", flush=True)
            acks, alerts = [], []
            published: list[Story] = []
            for run, story in enumerate(STORIES[: args.runs], start=1):
                published.insert(0, story)
                body = advertised(rss(*published, *BACKFILL), hub.url, topic)
                started = time.time()
                [delivery] = hub.publish(topic, body)
                acked = time.time()
                request = webhook.wait_for(run, timeout=120)[-1]
                assert story.link in request.body.decode(), "the alert is not about the story just published"
                assert delivery.status == 200, delivery
                acks.append(acked - started)
                alerts.append(request.received_at - started)
                print(f"run {run}: ack {acks[-1] * 1000:7.1f} ms   alert at the receiver {alerts[-1] * 1000:7.1f} ms")
            assert len(feeds.requests_for("/wire.xml")) == 1, "a poll happened: the figures would not be the push's"
            print(
                f"median: ack {statistics.median(acks) * 1000:.1f} ms, alert {statistics.median(alerts) * 1000:.1f} ms"
                f" (polls of the feed meanwhile: 0; without WebSub: the next poll, up to poll.default_interval)"
            )
        finally:
            daemon.stop()


if __name__ == "__main__":
    main()
