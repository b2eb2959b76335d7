"""The whole path with real parts: a local feed server, the real CLI and daemon in
subprocesses, the real spaCy model, a real SQLite file, a real SMTP server and a
real Slack-format webhook receiver."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from conftest import (
    BACKFILL,
    DEFAULT_ENTITIES,
    SLACK_URL,
    XI_PUTIN_CALL,
    DaemonProcess,
    Story,
    rss,
    run_cli,
    wait_until,
    write_config,
)

XI_PUTIN_RULE = {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["mail", "slack"]}
# A later Xi/Putin story, a different event from the call (its own alert). Tests that must
# show an alert was not sent again publish it: the delivery round that sends it would have
# sent any older alert still due first (the outbox goes out oldest first), so once it has
# arrived, "nothing else arrived" is a fact rather than a guess about timing.
PUTIN_VISIT = Story(
    "wire-4",
    "Putin to visit Beijing for a spring summit with Xi",
    "The Kremlin announced that Vladimir Putin will travel to Beijing in April, where Xi Jinping "
    "will host a two-day summit on energy exports and a new rail corridor across Mongolia.",
    datetime(2026, 11, 28, 7, 15, tzinfo=UTC),
)


def alert_config(tmp_path: Path, feed_server, smtp, *, slack: str = SLACK_URL, rules=(XI_PUTIN_RULE,)) -> Path:
    return write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        channels={"mail": {"url": smtp.apprise_url(), "format": "html"}, "slack": {"url": slack}},
        rules=list(rules),
        entities=DEFAULT_ENTITIES,
    )


def db_rows(config: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        return conn.execute(sql).fetchall()


def stories_in(texts: list[str]) -> list[str]:
    """Which story each message is about, by the one story link it carries."""
    known = (XI_PUTIN_CALL, PUTIN_VISIT, *BACKFILL)
    return ["+".join(story.guid for story in known if story.link in text) for text in texts]


def assert_names_the_alert(text: str) -> None:
    assert "xi-putin" in text
    assert XI_PUTIN_CALL.title in text
    assert XI_PUTIN_CALL.link in text


def test_a_story_reaches_email_and_slack_once_and_a_restart_repeats_nothing(tmp_path, feed_server, smtp, webhook, daemons):
    feed_server.route("/wire.xml", rss(*BACKFILL), etag='"v1"')
    config = alert_config(tmp_path, feed_server, smtp)
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)

    # The first fetch is backfill: an older Xi/Putin story is stored, not alerted.
    [backfill] = daemon.wait_for_log(r"poll\.done feed=wire .*backfill=true")
    assert " alerts=0 " in backfill, backfill
    daemon.wait_for_log(r"enrich\.done items=2 matches=1")
    daemon.wait_for_log(r"poll\.not_modified feed=wire")
    assert db_rows(config, "SELECT count(*) FROM matches") == [(1,)]
    # The match queued nothing, so there is nothing that could still go out later.
    assert db_rows(config, "SELECT count(*) FROM alerts") == [(0,)]
    assert smtp.messages == [] and webhook.requests == []

    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL), etag='"v2"')
    [mail] = smtp.wait_for(1, timeout=60)
    [slack] = webhook.wait_for(1, timeout=60)

    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    assert "xi-putin" in mail["Subject"] and XI_PUTIN_CALL.title in mail["Subject"]
    assert_names_the_alert(html)
    # The names the rule's terms matched are highlighted in the headline.
    assert "<mark>Xi Jinping</mark> and <mark>Vladimir Putin</mark> hold phone call on Ukraine" in html
    assert "Putin" in plain and XI_PUTIN_CALL.link in plain
    payload = json.dumps(slack.json)
    assert slack.path.startswith("/services/T1JJ3T3L2/A1BRTD4JD/")
    assert_names_the_alert(payload)
    assert "*Vladimir Putin*" in slack.json["attachments"][0]["text"]  # the matched words in bold

    assert daemon.stop(signal.SIGTERM) == 0
    assert "daemon.stopped" in daemon.log()
    assert db_rows(config, "SELECT channel, status, attempts FROM alerts ORDER BY channel") == [
        ("mail", "sent", 1),
        ("slack", "sent", 1),
    ]

    restarted = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(restarted)
    restarted.wait_for_log(r"daemon\.started")
    restarted.wait_for_log(r"poll\.not_modified feed=wire")
    # A new story after the restart. Its alerts go out in a delivery round of the restarted
    # daemon, after any older alert that round (or an earlier one) found due.
    feed_server.route("/wire.xml", rss(PUTIN_VISIT, XI_PUTIN_CALL, *BACKFILL), etag='"v3"')
    [done] = restarted.wait_for_log(r"poll\.done feed=wire ")
    assert " fresh=1 " in done and " alerts=2 " in done, done
    wait_until(
        lambda: "wire-4" in stories_in([m.get_body(("plain",)).get_content() for m in smtp.messages]),
        "the new story's email",
        detail=lambda: restarted.log(),
    )
    wait_until(
        lambda: "wire-4" in stories_in([json.dumps(r.json) for r in webhook.requests]),
        "the new story's Slack post",
        detail=lambda: restarted.log(),
    )
    assert restarted.stop() == 0
    # The restart sent the new story and repeated nothing.
    assert stories_in([m.get_body(("plain",)).get_content() for m in smtp.messages]) == ["wire-3", "wire-4"]
    assert stories_in([json.dumps(r.json) for r in webhook.requests]) == ["wire-3", "wire-4"]
    assert db_rows(
        config,
        "SELECT items.guid, alerts.channel, alerts.status, alerts.attempts"
        " FROM alerts JOIN items ON items.id = alerts.item_id ORDER BY items.guid, alerts.channel",
    ) == [
        ("wire-3", "mail", "sent", 1),
        ("wire-3", "slack", "sent", 1),
        ("wire-4", "mail", "sent", 1),
        ("wire-4", "slack", "sent", 1),
    ]


def test_poll_once_status_and_rules_test(tmp_path, feed_server, smtp, webhook):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = alert_config(tmp_path, feed_server, smtp)

    first = run_cli("poll", "--once", config=config, webhook=webhook)
    assert first.returncode == 0, first.stderr
    assert "backfill=true" in first.stderr
    assert smtp.messages == [] and webhook.requests == []

    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL))
    second = run_cli("poll", "--once", config=config, webhook=webhook)
    assert second.returncode == 0, second.stderr
    assert "delivered 2, failed 0" in second.stderr
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1

    third = run_cli("poll", "--once", config=config, webhook=webhook)
    assert third.returncode == 0 and "delivered 0" in third.stderr
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1

    status = run_cli("status", config=config)
    assert status.returncode == 0, status.stderr
    assert "wire" in status.stdout and "items stored:  3" in status.stdout
    assert "outbox: sent 2" in status.stdout

    tested = run_cli("rules", "test", "xi-putin", "--json", config=config)
    assert tested.returncode == 0, tested.stderr
    lines = [json.loads(line) for line in tested.stdout.splitlines()]
    assert {line["guid"] for line in lines} == {"wire-2", "wire-3"}
    for line in lines:
        assert line["feed"] == "wire" and line["link"].startswith("https://news.example.org/")
        assert {hit["term"] for hit in line["why"]} >= {"Xi", "Putin"}
    readable = run_cli("rules", "test", "person:Putin AND title:call", config=config)
    assert readable.returncode == 0
    assert XI_PUTIN_CALL.title in readable.stdout and "why: person:Putin" in readable.stdout
    assert "1 of 3 stored items match" in readable.stdout


def test_a_channel_that_is_down_gets_the_alert_once_it_recovers(tmp_path, feed_server, smtp, webhook, daemons):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL), etag='"v1"')
    # Down hard twice, then "come back in 4 seconds", then up again.
    webhook.fail_next(2, status=500)
    webhook.fail_next(1, status=503, headers={"Retry-After": "4"})
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)

    retries = daemon.wait_for_log(r"alert\.retry .*channel=hook", count=3, timeout=60)
    assert all("500" in line for line in retries[:2]) and "retry after 4s" in retries[2]
    requests = webhook.wait_for(4, timeout=60)
    assert [r.status for r in requests] == [500, 500, 503, 200]
    assert requests[3].at - requests[2].at >= 4  # Retry-After was honoured (backoff alone is 1-2s)
    daemon.wait_for_log(r"alert\.sent .*channel=hook")
    # A new story: the round that delivers its alert would first send the old alert again,
    # were it still due. Once it has arrived, nothing else can have been held back.
    feed_server.route("/wire.xml", rss(PUTIN_VISIT, XI_PUTIN_CALL), etag='"v2"')
    webhook.wait_for(5, timeout=60)
    daemon.wait_for_log(r"alert\.sent .*channel=hook", count=2)
    assert daemon.stop() == 0
    requests = webhook.requests
    assert [r.status for r in requests] == [500, 500, 503, 200, 200]
    call, visit = f"{XI_PUTIN_CALL.title} [xi-putin]", f"{PUTIN_VISIT.title} [xi-putin]"
    assert [r.json["title"] for r in requests] == [call, call, call, call, visit]
    assert XI_PUTIN_CALL.link in requests[3].json["message"]
    [(status, attempts, last_error), visit_row] = db_rows(
        config,
        "SELECT alerts.status, alerts.attempts, alerts.last_error"
        " FROM alerts JOIN items ON items.id = alerts.item_id ORDER BY items.guid",
    )
    assert (status, attempts) == ("sent", 4)
    assert "503" in last_error  # why it took four attempts stays on record
    assert visit_row == ("sent", 1, None)


def test_a_channel_that_never_recovers_keeps_the_alert_pending_with_the_reason(tmp_path, feed_server, webhook):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    webhook.set_default(status=503, body=b"maintenance")
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
        delivery={"retry_initial": "1m", "retry_max": "1h"},
    )
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0
    assert "failed 1" in result.stderr
    [(status, attempts, last_error)] = db_rows(config, "SELECT status, attempts, last_error FROM alerts")
    assert (status, attempts) == ("pending", 1)
    assert "503" in last_error


def test_sigterm_during_a_slow_poll_finishes_cleanly_and_loses_nothing(tmp_path, feed_server, daemons):
    # The slow feed answers only when the test says so: its poll is in flight for certain
    # when SIGTERM arrives, and finishes only after the daemon has begun to stop.
    slow_feed_answers = threading.Event()
    feed_server.route("/fast.xml", rss(*BACKFILL))
    feed_server.route("/slow.xml", rss(XI_PUTIN_CALL), gate=slow_feed_answers)
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "fast", "url": feed_server.url("/fast.xml")},
            {"name": "slow", "url": feed_server.url("/slow.xml"), "alert_first_fetch": True},
        ],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
        entities=DEFAULT_ENTITIES,
        poll={"default_interval": "1h", "max_interval": "1h"},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=fast")
    wait_until(lambda: feed_server.requests_for("/slow.xml"), "the slow feed's request to reach the feed server")
    daemon.process.send_signal(signal.SIGTERM)
    daemon.wait_for_log(r"daemon\.draining polls=1")  # it waits for the slow poll
    slow_feed_answers.set()
    assert daemon.process.wait(timeout=30) == 0
    log = daemon.log()
    assert "daemon.stopped" in log
    assert re.search(r"poll\.done feed=slow .* alerts=1 ", log), log
    # The slow poll was let finish: its item, match and alert are all stored. Once stopping,
    # the daemon starts no send, so the alert is pending, never attempted, for the next start.
    assert db_rows(config, "SELECT count(*) FROM items") == [(3,)]
    assert db_rows(config, "SELECT status, attempts FROM alerts") == [("pending", 0)]
    assert "alert.sent" not in log and XI_PUTIN_CALL.title not in log

    restarted = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(restarted)
    restarted.wait_for_log(r"alert\.sent .*channel=console")
    assert restarted.stop() == 0
    assert f"{XI_PUTIN_CALL.title} [xi-putin]" in restarted.log()
    assert db_rows(config, "SELECT status, attempts FROM alerts") == [("sent", 1)]


def entity_bomb(entity_chars: int, references: int) -> bytes:
    """An RSS feed whose one item uses one long internal entity many times (a quadratic blowup)."""
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f"<!DOCTYPE rss [\n<!ENTITY a \"{'A' * entity_chars}\">\n]>\n"
        "<rss version='2.0'><channel><title>Small bomb</title><link>https://attacker.example/</link>"
        "<item><title>Small blowup</title><link>https://attacker.example/2</link>"
        f"<description>{'&a;' * references}</description></item></channel></rss>"
    ).encode()


def test_broken_feeds_are_reported_and_the_rest_keep_working(tmp_path, feed_server):
    data = Path(__file__).parent / "data" / "feeds"
    feed_server.route("/good.xml", rss(XI_PUTIN_CALL))
    feed_server.route("/malformed.xml", (data / "malformed.xml").read_bytes())
    feed_server.route("/page.html", (data / "html-page.html").read_bytes(), content_type="text/html")
    feed_server.route("/gone.xml", b"not here", status=404)
    feed_server.route("/broken.xml", b"oops", status=500)
    feed_server.route("/slow.xml", rss(*BACKFILL), delay=10)
    feed_server.route("/huge.xml", rss(*[Story(f"g{n}", "x" * 100, "y" * 2000) for n in range(60)]))
    feed_server.route("/bomb.xml", (data / "quadratic-blowup.xml").read_bytes())  # 98 KiB: over the size cap
    small_bomb = entity_bomb(10_000, 4_000)  # 22 KB that would expand to 40 MB
    assert len(small_bomb) < 64 * 1024
    feed_server.route("/small-bomb.xml", small_bomb)
    feed_server.route("/cp1251.xml", (data / "windows-1251.xml").read_bytes(), content_type="application/rss+xml; charset=windows-1251")
    feed_server.route("/latin1.xml", (data / "iso-8859-1.xml").read_bytes(), content_type="application/rss+xml; charset=iso-8859-1")
    feed_server.route("/bom.xml", (data / "utf8-bom.xml").read_bytes())
    feed_server.route("/rdf.xml", (data / "rss10.rdf").read_bytes(), content_type="application/rdf+xml")
    feed_server.route("/atom03.xml", (data / "atom03.xml").read_bytes(), content_type="application/atom+xml")
    feed_server.route("/feed.json", (data / "jsonfeed11.json").read_bytes(), content_type="application/feed+json")
    feed_server.route("/gzip.xml", rss(*BACKFILL), gzip=True)
    names = [
        "good", "malformed", "page", "gone", "broken", "slow", "huge", "bomb", "small-bomb",
        "cp1251", "latin1", "bom", "rdf", "atom03", "json", "gzip",
    ]  # fmt: skip
    paths = [
        "/good.xml", "/malformed.xml", "/page.html", "/gone.xml", "/broken.xml", "/slow.xml", "/huge.xml",
        "/bomb.xml", "/small-bomb.xml", "/cp1251.xml", "/latin1.xml", "/bom.xml", "/rdf.xml", "/atom03.xml",
        "/feed.json", "/gzip.xml",
    ]  # fmt: skip
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": n, "url": feed_server.url(p), "alert_first_fetch": n == "good"} for n, p in zip(names, paths, strict=True)],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
        entities=DEFAULT_ENTITIES,
        poll={"timeout": "2s", "max_bytes": "64KiB"},
    )
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0, result.stderr
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    feeds = {feed["name"]: feed for feed in status["feeds"]}

    expected_errors = {
        "malformed": "not well-formed",
        "page": "HTML page",
        "gone": "404",
        "broken": "500",
        "slow": "timed out",
        "huge": "larger than",
        "bomb": "larger than",  # refused by its size before any parsing
    }
    for name, reason in expected_errors.items():
        assert feeds[name]["items"] == 0, name
        assert reason in (feeds[name]["last_error"] or ""), (name, feeds[name]["last_error"])
        assert f"feed={name}" in result.stderr and "poll.failed" in result.stderr
    for name in ["good", "cp1251", "latin1", "bom", "rdf", "atom03", "json", "gzip"]:
        assert feeds[name]["last_error"] is None, (name, feeds[name]["last_error"])
        assert feeds[name]["items"] > 0, name
    titles = [row[0] for row in db_rows(config, "SELECT title FROM items")]
    cyrillic = json.loads((Path(__file__).parent / "data" / "feeds" / "windows-1251.expected.json").read_text())
    assert cyrillic["items"][0]["title"] in titles
    # The entity bomb small enough to be parsed is defused: its item is stored, unexpanded.
    assert feeds["small-bomb"]["last_error"] is None and feeds["small-bomb"]["items"] == 1
    [(title, text)] = db_rows(
        config, "SELECT items.title, items.text FROM items JOIN feeds ON feeds.id = items.feed_id WHERE feeds.name = 'small-bomb'"
    )
    assert title == "Small blowup"
    assert "A" * 100 not in text and len(text) < len(small_bomb), len(text)
    # The good feed's story was alerted on the console despite its broken neighbours.
    assert XI_PUTIN_CALL.title in result.stdout


def test_check_reports_each_problem_with_its_position(tmp_path):
    config = write_config(tmp_path / "config", feeds=[], rules=[])
    ok = run_cli("check", config=config)
    assert ok.returncode == 0 and "OK: 0 feeds, 0 rules, 1 channel, 0 entities" in ok.stdout

    cases = {
        "rules.yaml": ("rules:\n  - name: a\n    query: Xi AND\n    notify: [console]\n", r"rules.yaml:3:\d+: rule 'a': "),
        "monitor.yaml": ("poll:\n  interval: 5m\n", r"monitor.yaml:2:3: poll: unknown key 'interval'; did you mean"),
        "entities.yaml": ("entities:\n  - {name: Xi Jinping, type: PERSON\n", r"entities.yaml:2:5: a mapping in \{ \} starts here and is never closed"),
    }
    for file, (text, pattern) in cases.items():
        broken = write_config(tmp_path / file, feeds=[], rules=[])
        (broken / file).write_text(text)
        result = run_cli("check", config=broken)
        assert result.returncode == 1, (file, result.stdout, result.stderr)
        assert re.search(pattern, result.stderr), (file, result.stderr)
        assert "Traceback" not in result.stderr

    unknown = write_config(tmp_path / "unknown", feeds=[], rules=[{"name": "r", "query": "Xi", "notify": ["pager"]}])
    result = run_cli("check", config=unknown)
    assert result.returncode == 1
    assert re.search(r"rules.yaml:\d+:\d+: rule 'r' notifies unknown channel 'pager'", result.stderr)


def test_unchanged_items_are_not_processed_again_and_changed_ones_are(tmp_path, feed_server):
    # No validators: the server answers 200 with the full feed every time.
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
        entities=DEFAULT_ENTITIES,
    )
    assert "fresh=3" in run_cli("poll", "--once", config=config).stderr
    assert "fresh=0" in run_cli("poll", "--once", config=config).stderr

    updated = Story(BACKFILL[0].guid, BACKFILL[0].title, "Update: the bank also cut its outlook.", BACKFILL[0].published)
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, updated, BACKFILL[1]))
    result = run_cli("poll", "--once", config=config)
    assert "entries=3 fresh=1" in result.stderr
    assert db_rows(config, "SELECT text FROM items WHERE guid = 'wire-1'") == [("Update: the bank also cut its outlook.",)]
    assert db_rows(config, "SELECT count(*) FROM items") == [(3,)]


def test_one_host_gets_at_most_per_host_requests_at_a_time(tmp_path, feed_server):
    for n in range(8):
        feed_server.route(f"/f{n}.xml", rss(Story(f"h-{n}", f"Story {n}", "Text.")), delay=0.4)
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": f"f{n}", "url": feed_server.url(f"/f{n}.xml")} for n in range(8)],
        poll={"concurrency": 8, "per_host": 2},
    )
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert "polled 8 feeds: 8 ok" in result.stderr
    assert feed_server.max_in_flight == 2


def test_the_next_poll_follows_activity_and_server_hints(tmp_path, feed_server):
    from datetime import timedelta

    now = datetime.now(UTC)
    busy = [Story(f"b-{n}", f"Busy story {n}", "Text.", now - timedelta(hours=n)) for n in range(84)]  # 12 a day
    quiet = [Story(f"q-{n}", f"Quiet story {n}", "Text.", now - timedelta(days=2 * n)) for n in range(3)]
    feed_server.route("/busy.xml", rss(*busy))
    feed_server.route("/quiet.xml", rss(*quiet))
    feed_server.route("/cached.xml", rss(*busy), headers={"Cache-Control": "max-age=10800"})
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": n, "url": feed_server.url(f"/{n}.xml")} for n in ("busy", "quiet", "cached")],
        poll={"min_interval": "2m", "default_interval": "10m", "max_interval": "6h"},
    )
    assert run_cli("poll", "--once", config=config).returncode == 0
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    reasons = {feed["name"]: feed["next_poll_reason"] for feed in status["feeds"]}
    assert reasons["busy"].startswith("84 entries last week: every 2 h")
    assert reasons["quiet"] == "3 entries last week: every 6 h (maximum)"
    assert reasons["cached"].startswith("server Cache-Control max-age=10800")
