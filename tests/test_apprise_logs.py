"""apprise's own log lines come out once, in the product's log format, with the channel they concern."""

from __future__ import annotations

import json
import re

from conftest import run_cli, write_config

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def down_receiver_config(tmp_path, webhook):
    webhook.set_default(status=500, body=b"down")
    return write_config(tmp_path / "config", feeds=[], channels={"desk": {"url": webhook.json_url("/hook")}})


def test_notify_test_to_a_failing_receiver_logs_apprises_line_once_as_key_value(tmp_path, webhook):
    config = down_receiver_config(tmp_path, webhook)
    failed = run_cli("notify-test", "desk", config=config, webhook=webhook)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    apprise_lines = [line for line in lines if "Failed to send JSON POST notification" in line]
    logged = [line for line in apprise_lines if re.match(rf"{STAMP} WARNING apprise ", line)]
    assert len(logged) == 1, failed.stderr
    assert re.fullmatch(
        rf'{STAMP} WARNING apprise message="Failed to send JSON POST notification: [^"]*error=500\." channel=desk',
        logged[0],
    ), logged[0]
    # Besides the log line, only the command's own one-line verdict says it.
    [verdict] = [line for line in apprise_lines if line not in logged]
    assert verdict.startswith("news-monitor: channel 'desk' ")


def test_apprises_line_is_one_json_object_with_log_format_json(tmp_path, webhook):
    config = down_receiver_config(tmp_path, webhook)
    failed = run_cli("notify-test", "desk", "--log-format", "json", config=config, webhook=webhook)
    assert failed.returncode == 1
    events = [json.loads(line) for line in failed.stderr.splitlines() if line.startswith("{")]
    [event] = [e for e in events if e["event"] == "apprise"]
    assert event["level"] == "WARNING" and event["channel"] == "desk"
    assert event["message"].startswith("Failed to send JSON POST notification")
