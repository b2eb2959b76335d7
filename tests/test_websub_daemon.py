"""WebSub through the real daemon: a real local hub, a feed server advertising it, a real webhook receiver.

The feed server never serves the story the hub publishes, so an alert about it
can only have come by push.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
from conftest import (
    BACKFILL,
    DEFAULT_ENTITIES,
    XI_PUTIN_CALL,
    DaemonProcess,
    Story,
    rss,
    wait_until,
    write_config,
)
from receivers import free_port
from websubhub import WebSubHub

CALLBACK = "https://news.example.org/websub"
RULE = {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}
PUTIN_VISIT = Story(
    "wire-4",
    "Putin to visit Beijing for a spring summit with Xi",
    "The Kremlin announced that Vladimir Putin will travel to Beijing in April, where Xi Jinping "
    "will host a two-day summit on energy exports and a new rail corridor across Mongolia.",
)


def advertised(body: bytes, hub: str, topic: str) -> bytes:
    """An RSS document naming its WebSub hub and its own URL with atom:link, as WordPress and others do."""
    links = f"<atom:link rel='hub' href='{hub}'/><atom:link rel='self' href='{topic}'/>"
    return body.replace(
        b"<rss version='2.0'>", b"<rss version='2.0' xmlns:atom='http://www.w3.org/2005/Atom'>"
    ).replace(b"<channel>", b"<channel>" + links.encode(), 1)


def db_rows(config: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        return conn.execute(sql).fetchall()


def websub_config(tmp_path: Path, feeds: list[dict[str, object]], webhook, port: int) -> Path:
    return write_config(
        tmp_path / "config",
        feeds=feeds,
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[RULE],
        entities=DEFAULT_ENTITIES,
        poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "1h"},
        websub={"callback": CALLBACK, "listen": f"127.0.0.1:{port}"},
    )


def alerted_guids(webhook) -> list[str]:
    return sorted(
        story.guid
        for request in webhook.requests
        for story in (XI_PUTIN_CALL, PUTIN_VISIT)
        if story.link in request.body.decode()
    )


def test_a_hub_pushes_news_that_alerts_at_once_and_only_when_signed(tmp_path, feed_server, webhook, daemons):
    port = free_port()
    with WebSubHub(proxy={CALLBACK: f"http://127.0.0.1:{port}/websub"}, lease_seconds=20) as hub:
        topic = feed_server.url("/wire.xml")
        old_news = advertised(rss(*BACKFILL), hub.url, topic)
        feed_server.route("/wire.xml", old_news, etag='"v1"')
        # A second feed names its hub only in a Link header, and no topic: its own URL is the topic.
        pulse = feed_server.url("/pulse.xml")
        feed_server.route("/pulse.xml", rss(*BACKFILL), headers={"Link": f'<{hub.url}>; rel="hub"'})
        feeds = [
            {"name": "wire", "url": topic, "interval": "3s"},  # polled every 3s until a hub pushes it
            {"name": "pulse", "url": pulse},
        ]
        config = websub_config(tmp_path, feeds, webhook, port)
        daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
        daemons.append(daemon)

        # The first poll finds the hub; the daemon subscribes with its own callback and secret; the hub verifies.
        [wire] = hub.wait_for_subscribers(topic)
        [request] = [r for r in hub.requests if r.form["hub.topic"] == topic]
        assert request.mode == "subscribe" and request.form["hub.lease_seconds"] == str(7 * 86400)
        assert wire.callback.startswith(CALLBACK + "/") and len(wire.secret or "") >= 32
        [other] = hub.wait_for_subscribers(pulse)
        assert other.callback != wire.callback and other.secret != wire.secret
        daemon.wait_for_log(r"websub\.verified feed=wire")

        # While the hub pushes it, the feed is polled as a safety net only: every max_interval.
        wait_until(
            lambda: (db_rows(config, "SELECT next_poll_reason FROM feeds WHERE name = 'wire'")[0][0] or "").startswith(
                "pushed by its WebSub hub"
            ),
            "the wire's next poll to be the safety net",
            detail=daemon.log,
        )
        polls = len(feed_server.requests_for("/wire.xml"))

        # A signed push: the alert comes at once, though the feed server never served the story.
        [delivery] = hub.publish(topic, advertised(rss(XI_PUTIN_CALL, *BACKFILL), hub.url, topic))
        assert delivery.status == 200
        webhook.wait_for(1, timeout=60)
        assert alerted_guids(webhook) == ["wire-3"]

        # Forged and unsigned pushes are acknowledged (WebSub 8) and ignored.
        forged = advertised(rss(PUTIN_VISIT, XI_PUTIN_CALL, *BACKFILL), hub.url, topic)
        assert [d.status for d in hub.publish(topic, forged, secret="not-the-secret")] == [202]
        assert [d.status for d in hub.publish(topic, forged, signed=False)] == [202]
        assert len(daemon.wait_for_log(r"websub\.bad_signature feed=wire", count=2)) == 2
        assert db_rows(config, "SELECT count(*) FROM items WHERE guid = 'wire-4'") == [(0,)]
        # Signed with another of the spec's methods, the same content is taken.
        assert [d.status for d in hub.publish(topic, forged, method="sha1")] == [200]
        webhook.wait_for(2, timeout=60)
        assert alerted_guids(webhook) == ["wire-3", "wire-4"]
        assert len(feed_server.requests_for("/wire.xml")) == polls  # no poll explains those alerts

        # Verifications the daemon did not ask for get 404, whoever sends them.
        callback = hub.local(wire.callback)
        bogus = [
            (callback, {"hub.mode": "subscribe", "hub.topic": "https://evil.example/feed", "hub.lease_seconds": "60"}),
            (callback, {"hub.mode": "unsubscribe", "hub.topic": topic}),  # we never asked to unsubscribe
            (f"http://127.0.0.1:{port}/websub/no-such-token", {"hub.mode": "subscribe", "hub.topic": topic,
                                                                "hub.lease_seconds": "60"}),
            (callback, {"hub.topic": topic}),
        ]  # fmt: skip
        for url, query in bogus:
            answer = httpx.get(url, params={**query, "hub.challenge": "echo-me"}, timeout=30)
            assert answer.status_code == 404 and "echo-me" not in answer.text, (url, query, answer.text)
        assert len(daemon.wait_for_log(r"websub\.verification_refused", count=len(bogus))) == len(bogus)
        # Content for no subscription is refused as gone.
        gone = httpx.post(f"http://127.0.0.1:{port}/websub/no-such-token", content=b"<rss/>", timeout=30)
        assert gone.status_code == 410

        # The daemon renews before the 20s lease the hub granted runs out.
        hub.wait_for(
            lambda: sum(1 for r in hub.requests if r.callback == wire.callback and r.mode == "subscribe") >= 2,
            "a renewal of the wire's subscription",
            timeout=90,
        )
        hub.wait_for(
            lambda: sum(1 for v in hub.verifications if v.callback == wire.callback and v.echoed) >= 2,
            "the renewal verified",
            timeout=90,
        )

        # A feed removed from the config is unsubscribed; the other stays.
        write_config(
            tmp_path / "config",
            feeds=feeds[1:],
            channels={"hook": {"url": webhook.json_url("/hook")}},
            rules=[RULE],
            entities=DEFAULT_ENTITIES,
            poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "1h"},
            websub={"callback": CALLBACK, "listen": f"127.0.0.1:{port}"},
        )
        hub.wait_for(lambda: not hub.subscribers(topic) or None, "the removed feed's unsubscription", timeout=90)
        daemon.wait_for_log(r"websub\.unsubscribed feed=wire")
        assert [r.mode for r in hub.requests if r.callback == wire.callback][-1] == "unsubscribe"
        assert len(hub.subscribers(pulse)) == 1
        assert db_rows(
            config, "SELECT count(*) FROM websub WHERE feed_id = (SELECT id FROM feeds WHERE name = 'wire')"
        ) == [(0,)]
        # Whatever still comes to the old callback is refused as gone.
        assert httpx.post(callback, content=forged, timeout=30).status_code == 410
        assert daemon.stop() == 0
