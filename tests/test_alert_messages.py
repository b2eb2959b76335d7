"""Alert messages as they arrive, through the real daemon: one message per story and channel
whatever the number of rules it matched, and times in the user's display time zone.

Real parts: the local feed server, the daemon in a subprocess, the Slack-format webhook
receiver and the SMTP receiver."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from conftest import DEFAULT_ENTITIES, SLACK_URL, XI_PUTIN_CALL, DaemonProcess, rss, run_cli, wait_until, write_config

XI_PUTIN = {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["mail", "slack"]}
KREMLIN = {"name": "kremlin", "query": "Kremlin", "notify": ["mail", "slack"]}


def config_for(tmp_path: Path, feed_server, smtp, rules, **settings) -> Path:
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    return write_config(
        tmp_path / "config",
        # The story is on the feed's first fetch: alert it rather than hold it back as backfill.
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"mail": {"url": smtp.apprise_url(), "format": "html"}, "slack": {"url": SLACK_URL}},
        rules=rules,
        entities=DEFAULT_ENTITIES,
        **settings,
    )


def alert_rows(config: Path) -> list[tuple[str, str, str]]:
    """The outbox as (rule, channel, status); empty until the daemon made the database (never made here)."""
    database = config / "state" / "news-monitor.db"
    if not database.exists():
        return []
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        try:
            return conn.execute("SELECT rule, channel, status FROM alerts ORDER BY rule, channel").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def slack_text(request) -> str:
    attachment = request.json["attachments"][0]
    return f"{attachment['title']}\n{attachment['text']}"


def test_two_rules_matching_one_story_send_one_message_per_channel(tmp_path, feed_server, smtp, webhook, daemons):
    config = config_for(tmp_path, feed_server, smtp, [XI_PUTIN, KREMLIN])
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)

    # Every row is marked sent only after its channel took the message, so once all four are
    # sent, every message about the story has arrived.
    want = [
        ("kremlin", "mail", "sent"),
        ("kremlin", "slack", "sent"),
        ("xi-putin", "mail", "sent"),
        ("xi-putin", "slack", "sent"),
    ]
    wait_until(lambda: alert_rows(config) == want, "all four alert rows sent", timeout=120, detail=daemon.log)
    assert daemon.stop() == 0

    [post] = webhook.requests
    [mail] = smtp.messages
    text = slack_text(post)
    assert text.startswith(XI_PUTIN_CALL.title + "\n")
    assert "Why: *xi-putin* · Xi → Xi Jinping (title, body), Putin → Vladimir Putin (title, body)" in text
    assert "Why: *kremlin* · Kremlin (body)" in text
    assert mail["Subject"] == f"{XI_PUTIN_CALL.title} [xi-putin, kremlin]"
    plain = mail.get_body(("plain",)).get_content()
    assert "Why: xi-putin · " in plain and "Why: kremlin · Kremlin (body)" in plain
    assert "because rules xi-putin, kremlin matched" in plain
    # One log line for the one send of each channel, naming both rules.
    sent = [line for line in daemon.log().splitlines() if "alert.sent" in line]
    assert len(sent) == 2 and all("xi-putin, kremlin" in line for line in sent), sent


def test_alert_times_are_shown_in_the_display_time_zone(tmp_path, feed_server, smtp, webhook, daemons):
    config = config_for(tmp_path, feed_server, smtp, [XI_PUTIN], display_timezone="Europe/Berlin")
    daemon = DaemonProcess(config, tmp_path / "daemon.log", webhook).start()
    daemons.append(daemon)

    [post] = webhook.wait_for(1, timeout=120)
    [mail] = smtp.wait_for(1, timeout=120)
    assert daemon.stop() == 0

    # Published 09:30 UTC on 27 November: 10:30 in Berlin (CET, UTC+1).
    shown = "wire · 2026-11-27 10:30 CET"
    assert shown in slack_text(post)
    assert shown in mail.get_body(("plain",)).get_content()
    assert "2026-11-27 10:30 CET" in mail.get_body(("html",)).get_content()
    assert "UTC" not in json.dumps(post.json) + mail.get_body(("plain",)).get_content()


def test_an_unknown_display_time_zone_is_one_clear_line(tmp_path):
    config = write_config(tmp_path / "config", feeds=[], display_timezone="Europe/Berlinn")

    checked = run_cli("check", config=config)

    assert checked.returncode != 0
    [line] = [line for line in checked.stderr.splitlines() if "display_timezone" in line]
    assert line.endswith(
        "display_timezone: unknown time zone 'Europe/Berlinn' (expected an IANA name such as Europe/Berlin or UTC);"
        " did you mean 'Europe/Berlin'?"
    ), line
    assert "Traceback" not in checked.stderr
