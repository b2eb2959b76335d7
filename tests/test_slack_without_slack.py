"""Trying Slack delivery without Slack: a channel's ``webhook_base`` and scripts/slack-receiver.

The README documents this as the way to see a real Slack alert on one machine;
these tests run exactly that: the receiver script in a subprocess, the real CLI,
the real apprise Slack plugin (no test-only import hook on the path).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli, wait_until, write_config

RECEIVER = Path(__file__).resolve().parents[1] / "scripts" / "slack-receiver"


class Output:
    """The receiver's stdout, read by a thread so that waiting for a line can time out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(process.stdout.readline, "")), daemon=True).start()

    def read_until(self, text: str) -> str:
        wait_until(
            lambda: text in "".join(self.lines),
            f"{text!r} from slack-receiver",
            timeout=60,
            detail=lambda: "".join(self.lines),
        )
        return "".join(self.lines)


@pytest.fixture
def receiver() -> Iterator[tuple[str, Output]]:
    process = subprocess.Popen(
        [sys.executable, str(RECEIVER), "--port", "0"], stdout=subprocess.PIPE, text=True, bufsize=1
    )
    output = Output(process)
    try:
        banner = output.read_until("listening on")
        base = banner.split("listening on ", 1)[1].split()[0]
        yield base, output
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_a_slack_channel_with_webhook_base_posts_to_the_local_receiver(tmp_path, receiver) -> None:
    base, output = receiver
    config = write_config(
        tmp_path,
        feeds=[],
        channels={"desk": {"url": "slack://T000/B000/XXXXSECRET", "webhook_base": base}},
    )
    result = run_cli("notify-test", "desk", config=config)
    assert result.returncode == 0, result.stderr
    printed = output.read_until('"attachments"')
    # The receiver got the real Slack payload at the webhook's path, and shows it as Slack would.
    assert "--- POST /services/T000/B000/XXXXSECRET" in printed
    assert "Test alert from news-monitor for channel desk" in printed


def test_webhook_base_on_a_channel_that_is_not_a_slack_webhook_is_a_config_error(tmp_path) -> None:
    config = write_config(
        tmp_path,
        feeds=[],
        channels={"hook": {"url": "json://127.0.0.1:9/hook", "webhook_base": "http://127.0.0.1:9000/services"}},
    )
    result = run_cli("check", config=config)
    assert result.returncode != 0
    assert "monitor.yaml:" in result.stderr
    assert "webhook_base applies to Slack webhook URLs only" in result.stderr
    assert "Traceback" not in result.stderr


def test_webhook_base_must_be_a_web_address(tmp_path) -> None:
    config = write_config(
        tmp_path, feeds=[], channels={"desk": {"url": "slack://T000/B000/XXXX", "webhook_base": "file:///tmp/x"}}
    )
    result = run_cli("check", config=config)
    assert result.returncode != 0
    assert "webhook_base must be an http:// or https:// URL" in result.stderr
