"""The whole path with real parts: a local feed server, the real CLI and daemon in
subprocesses, the real spaCy model, a real SQLite file, a real SMTP server and a
real Slack-format webhook receiver."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import time
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
    write_config,
)

XI_PUTIN_RULE = {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["mail", "slack"]}


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
    daemon.wait_for_log(r"poll\.done feed=wire .*backfill=true")
    daemon.wait_for_log(r"enrich\.done items=2 matches=1")
    daemon.wait_for_log(r"poll\.not_modified feed=wire")
    assert smtp.messages == [] and webhook.requests == []
    assert db_rows(config, "SELECT count(*) FROM matches") == [(1,)]

    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL), etag='"v2"')
    [mail] = smtp.wait_for(1, timeout=60)
    [slack] = webhook.wait_for(1, timeout=60)

    html = mail.get_body(("html",)).get_content()
    plain = mail.get_body(("plain",)).get_content()
    assert "xi-putin" in mail["Subject"] and XI_PUTIN_CALL.title in mail["Subject"]
    assert_names_the_alert(html)
    assert "<mark>Xi</mark>" in html or "<mark>Xi Jinping</mark>" in html
    assert "Putin" in plain and XI_PUTIN_CALL.link in plain
    payload = json.dumps(slack.json)
    assert slack.path.startswith("/services/T1JJ3T3L2/A1BRTD4JD/")
    assert_names_the_alert(payload)
    assert "*Xi" in payload and "*Putin" in payload  # the matched words in bold

    assert daemon.stop(signal.SIGTERM) == 0
    assert "daemon.stopped" in daemon.log()

    restarted = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(restarted)
    restarted.wait_for_log(r"daemon\.started")
    restarted.wait_for_log(r"poll\.(not_modified|done) feed=wire", count=3)
    time.sleep(2)  # two more delivery ticks
    assert restarted.stop() == 0
    assert len(smtp.messages) == 1 and len(webhook.requests) == 1
    assert db_rows(config, "SELECT channel, status, attempts FROM alerts ORDER BY channel") == [
        ("mail", "sent", 1),
        ("slack", "sent", 1),
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
    assert XI_PUTIN_CALL.title in requests[-1].json["message"] or XI_PUTIN_CALL.title in requests[-1].json["title"]
    daemon.wait_for_log(r"alert\.sent .*channel=hook")
    time.sleep(1.5)
    assert daemon.stop() == 0
    assert len(webhook.requests) == 4
    [(status, attempts, last_error)] = db_rows(config, "SELECT status, attempts, last_error FROM alerts")
    assert (status, attempts) == ("sent", 4)
    assert "503" in last_error  # why it took four attempts stays on record


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
    feed_server.route("/fast.xml", rss(*BACKFILL))
    feed_server.route("/slow.xml", rss(XI_PUTIN_CALL), delay=3.0)
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
    assert daemon.stop(signal.SIGTERM) == 0
    log = daemon.log()
    assert "daemon.draining polls=1" in log and "daemon.stopped" in log  # the slow poll was in flight
    # The slow poll was let finish: its item, match and alert are all stored, and the
    # console alert went out or stays pending for the next start.
    assert db_rows(config, "SELECT count(*) FROM items") == [(3,)]
    [(status,)] = db_rows(config, "SELECT status FROM alerts")
    assert status in ("pending", "sent")


def test_broken_feeds_are_reported_and_the_rest_keep_working(tmp_path, feed_server):
    data = Path(__file__).parent / "data" / "feeds"
    feed_server.route("/good.xml", rss(XI_PUTIN_CALL))
    feed_server.route("/malformed.xml", (data / "malformed.xml").read_bytes())
    feed_server.route("/page.html", (data / "html-page.html").read_bytes(), content_type="text/html")
    feed_server.route("/gone.xml", b"not here", status=404)
    feed_server.route("/broken.xml", b"oops", status=500)
    feed_server.route("/slow.xml", rss(*BACKFILL), delay=10)
    feed_server.route("/huge.xml", rss(*[Story(f"g{n}", "x" * 100, "y" * 2000) for n in range(60)]))
    feed_server.route("/bomb.xml", (data / "quadratic-blowup.xml").read_bytes())
    feed_server.route("/cp1251.xml", (data / "windows-1251.xml").read_bytes(), content_type="application/rss+xml; charset=windows-1251")
    feed_server.route("/latin1.xml", (data / "iso-8859-1.xml").read_bytes(), content_type="application/rss+xml; charset=iso-8859-1")
    feed_server.route("/bom.xml", (data / "utf8-bom.xml").read_bytes())
    feed_server.route("/rdf.xml", (data / "rss10.rdf").read_bytes(), content_type="application/rdf+xml")
    feed_server.route("/atom03.xml", (data / "atom03.xml").read_bytes(), content_type="application/atom+xml")
    feed_server.route("/feed.json", (data / "jsonfeed11.json").read_bytes(), content_type="application/feed+json")
    feed_server.route("/gzip.xml", rss(*BACKFILL), gzip=True)
    names = [
        "good", "malformed", "page", "gone", "broken", "slow", "huge", "bomb",
        "cp1251", "latin1", "bom", "rdf", "atom03", "json", "gzip",
    ]  # fmt: skip
    paths = [
        "/good.xml", "/malformed.xml", "/page.html", "/gone.xml", "/broken.xml", "/slow.xml", "/huge.xml",
        "/bomb.xml", "/cp1251.xml", "/latin1.xml", "/bom.xml", "/rdf.xml", "/atom03.xml", "/feed.json", "/gzip.xml",
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
    # The entity bomb is defused: refused, or parsed without expanding the entities.
    assert feeds["bomb"]["items"] == 0 or all(len(t) < 10_000 for t in titles)
    # The good feed's story was alerted on the console despite its broken neighbours.
    assert XI_PUTIN_CALL.title in result.stdout


def test_check_reports_each_problem_with_its_position(tmp_path):
    config = write_config(tmp_path / "config", feeds=[], rules=[])
    ok = run_cli("check", config=config)
    assert ok.returncode == 0 and "OK: 0 feeds, 0 rules, 1 channels, 0 entities" in ok.stdout

    cases = {
        "rules.yaml": ("rules:\n  - name: a\n    query: Xi AND\n    notify: [console]\n", r"rules.yaml:3:\d+: rule 'a': "),
        "monitor.yaml": ("poll:\n  interval: 5m\n", r"monitor.yaml:2:3: poll.interval: unknown key 'interval'"),
        "entities.yaml": ("entities:\n  - {name: Xi Jinping, type: PERSON\n", r"entities.yaml:\d+:\d+: invalid YAML"),
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
    from datetime import UTC, datetime, timedelta

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
    assert reasons["busy"].startswith("84 entries last week: every 2h")
    assert reasons["quiet"] == "3 entries last week: every 6h (maximum)"
    assert reasons["cached"].startswith("server Cache-Control max-age=10800")
