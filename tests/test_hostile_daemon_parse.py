"""Hostile feeds through the real daemon and CLI: a feed too slow to parse, feeds whose
polls fail with errors that are not feed errors, and an item with a 1 MB title, NUL
bytes and bidirectional overrides on its way to a real webhook and SMTP receiver."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

from conftest import SLACK_URL, DaemonProcess, Story, rss, run_cli, wait_until, write_config

BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")


def parsers_of(pid: int) -> set[int]:
    """The parser processes the daemon ``pid`` has started (not multiprocessing's resource tracker)."""
    try:
        children = {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()
    found = set()
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
        except FileNotFoundError:
            pass
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


def feed_status(config: Path) -> dict[str, dict[str, Any]]:
    done = run_cli("status", "--json", config=config)
    assert done.returncode == 0, done.stderr
    return {feed["name"]: feed for feed in json.loads(done.stdout)["feeds"]}


def slow_feed() -> bytes:
    """About 9 MB of ordinary items: several seconds of feedparser, within poll.max_bytes."""
    return rss(
        *[Story(f"slow-{n}", f"Story number {n} " * 4, "Body <b>text</b> of the story. " * 25) for n in range(6_000)]
    )


def test_a_feed_too_slow_to_parse_is_cut_off_while_another_feeds_alert_goes_out(
    tmp_path, feed_server, webhook, daemons
):
    feed_server.route("/slow.xml", slow_feed())
    feed_server.route("/wire.xml", rss(Story("w-1", "Markets open higher", "Shares rose.")))
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "slow", "url": feed_server.url("/slow.xml")},
            {"name": "wire", "url": feed_server.url("/wire.xml")},
        ],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        poll={"parse_timeout": "1s", "max_error_interval": "2s"},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"daemon\.started", timeout=90)
    parsers: set[int] = set()

    def note_parsers() -> None:
        assert daemon.process is not None
        parsers.update(parsers_of(daemon.process.pid))

    note_parsers()
    [failed] = daemon.wait_for_log(r"poll\.failed feed=slow .*parsing took longer than 1 s", timeout=90)
    assert "the parser was restarted" in failed
    daemon.wait_for_log(r"poll\.done feed=wire ", timeout=60)
    note_parsers()

    # While the slow feed keeps failing (and its parser being replaced), a story on the wire alerts.
    daemon.wait_for_log(r"poll\.failed feed=slow ", count=2, timeout=90)
    feed_server.route(
        "/wire.xml",
        rss(
            Story("w-2", "Ceasefire agreed in the north", "Both sides agreed."),
            Story("w-1", "Markets open higher", "Shares rose."),
        ),
    )
    published = time.time()
    [alert] = webhook.wait_for(1, timeout=90)
    print(f"alert latency with a slow feed cut off beside it: {alert.received_at - published:.2f} s")
    assert "Ceasefire agreed in the north" in json.dumps(alert.json)
    note_parsers()

    status = feed_status(config)
    assert "parsing took longer than 1 s; the parser was restarted" in (status["slow"]["last_error"] or "")
    assert status["wire"]["last_error"] is None

    # Parser processes killed from outside (out of memory, an operator) fail what they were
    # about to parse, are replaced, and the next story still alerts.
    assert daemon.process is not None
    for pid in parsers_of(daemon.process.pid):
        os.kill(pid, signal.SIGKILL)
    feed_server.route(
        "/wire.xml",
        rss(
            Story("w-3", "Ceasefire extended by a week", "Both sides agreed again."),
            Story("w-2", "Ceasefire agreed in the north", "Both sides agreed."),
            Story("w-1", "Markets open higher", "Shares rose."),
        ),
    )
    webhook.wait_for(2, timeout=90)
    daemon.wait_for_log(r"poll\.failed .*the parser process died while parsing this feed; it was restarted", timeout=60)
    note_parsers()

    # The parser processes replaced along the way were reaped; on stop none is left behind.
    assert daemon.stop() == 0
    assert len(parsers) >= 3, parsers  # two at the start, and at least one replacement
    wait_until(lambda: not [pid for pid in parsers if alive(pid)], "every parser process to be gone", timeout=15)


PROBES = {
    # httpx refuses the redirect's Location itself, before news-monitor sees it.
    "redirect": ("/data", "redirected to an invalid URL"),
    "deep": ("/deep.json", "nested too deeply"),
}


def route_probes(feed_server) -> None:
    feed_server.route(
        "/data", b"", status=302, headers={"Location": "data:application/rss+xml,<rss/>"}, content_type=None
    )
    feed_server.route(
        "/deep.json", b'{"items":' + b"[" * 200_000 + b"]" * 200_000 + b"}", content_type="application/json"
    )


def test_polls_failing_with_errors_that_are_not_feed_errors_are_recorded_and_back_off(tmp_path, feed_server, daemons):
    route_probes(feed_server)
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": name, "url": feed_server.url(path)} for name, (path, _) in PROBES.items()],
        poll={"max_interval": "1h", "max_error_interval": "1h"},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"daemon\.started", timeout=90)

    # Backoff from the 1 s minimum: 1, 2, 4 s... (not a poll on every 1 s tick).
    wait_until(
        lambda: all(feed["error_count"] >= 4 for feed in feed_status(config).values()),
        "four failures in a row of each probe",
        timeout=120,
        detail=daemon.log,
    )
    status = feed_status(config)
    for name, (path, reason) in PROBES.items():
        feed = status[name]
        assert reason in feed["last_error"], feed
        assert "internal error" not in feed["last_error"]
        assert "error backoff" in feed["next_poll_reason"], feed
        polls = len(feed_server.requests_for(path))
        assert polls <= feed["error_count"] + 1, (name, polls, feed)
    assert daemon.stop() == 0
    shown = run_cli("status", config=config)
    assert "nested too deeply" in shown.stdout and "redirected to an invalid URL" in shown.stdout


def test_feeds_add_reports_any_failure_in_one_line(tmp_path, feed_server):
    route_probes(feed_server)
    config = write_config(tmp_path / "config", feeds=[], poll={"allow_private": True})
    for path in ("/data", "/deep.json"):
        done = run_cli("feeds", "add", feed_server.url(path), config=config)
        assert done.returncode != 0
        assert "Traceback" not in done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"news-monitor: {feed_server.url(path)}: "), line
    assert "redirected to an invalid URL" in run_cli("feeds", "add", feed_server.url("/data"), config=config).stderr


def test_an_item_with_a_huge_dirty_title_alerts_bounded_and_clean(tmp_path, feed_server, webhook, smtp, daemons):
    title = "Ceasefire\x00 talks \u202eelbatsnu\u202c resume \u2066in Geneva\u2069 " + "and more " * 120_000  # ~1 MB
    body = "Negotiators\x00 met \u202eagain\u202c on Friday. " + "Details follow. " * 20_000
    # A headline in a script whose every character takes 9 bytes in an encoded subject.
    chinese = Story("d-2", "Ceasefire: " + "停火谈判将于周五在日内瓦恢复" * 11, "The talks resume on Friday.")
    feed_server.route("/dirty.xml", rss(Story("d-1", title, body), chinese))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "dirty", "url": feed_server.url("/dirty.xml"), "alert_first_fetch": True}],
        channels={"slack": {"url": SLACK_URL}, "mail": {"url": smtp.apprise_url(), "format": "html"}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["slack", "mail"]}],
        poll={"max_text_chars": 5_000},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)
    posts = webhook.wait_for(2, timeout=90)
    mails = smtp.wait_for(2, timeout=90)
    [slack] = [post for post in posts if "Ceasefire talks" in json.dumps(post.json, ensure_ascii=False)]
    [mail] = [mail for mail in mails if "Ceasefire talks" in str(mail["Subject"])]
    [subject_cjk] = [str(mail["Subject"]) for mail in mails if "停火" in str(mail["Subject"])]
    assert subject_cjk.startswith("Ceasefire: 停火") and subject_cjk.endswith("[ceasefire]") and len(subject_cjk) <= 200

    assert len(slack.body) < 20_000, len(slack.body)
    payload = json.dumps(slack.json, ensure_ascii=False)  # escapes decoded
    assert "Ceasefire talks" in payload and "…" in payload  # the title, cut
    assert "\x00" not in payload and not any(mark in payload for mark in BIDI), payload[:300]

    subject = str(mail["Subject"])
    assert len(subject) <= 200 and subject.startswith("Ceasefire talks") and subject.endswith("… [ceasefire]")
    html = mail.get_body(("html",)).get_content()
    for text in (subject, html):
        assert "\x00" not in text and not any(mark in text for mark in BIDI)
    assert len(html) < 50_000

    assert daemon.stop() == 0
    with sqlite3.connect(config / "state" / "news-monitor.db") as conn:
        [(stored_title, stored_text)] = conn.execute("SELECT title, text FROM items WHERE guid = 'd-1'").fetchall()
    assert len(stored_title) <= 1_000 and stored_title.endswith("…") and "\x00" not in stored_title
    assert len(stored_text) <= 5_000 and "\x00" not in stored_text
    assert "\u202e" in stored_title  # stored as published; neutralised where it is shown

    listed = run_cli("alerts", "list", config=config)
    assert listed.returncode == 0, listed.stderr
    assert "Ceasefire talks" in listed.stdout and not any(mark in listed.stdout for mark in BIDI)
    assert len(listed.stdout) < 10_000
