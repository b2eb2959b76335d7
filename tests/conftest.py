"""Shared test support: feed builders, the real CLI in a subprocess, a daemon process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import TypeVar
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

import pytest
from browser import browser, page  # noqa: F401  (the browser tests' fixtures: tests/browser.py)
from feedserver import FeedServer
from postgres import pg_drop_databases, pg_dsn, pg_empty, postgres  # noqa: F401  (a real PostgreSQL: tests/postgres.py)
from receivers import SMTPReceiver, WebhookReceiver

REPO = Path(__file__).resolve().parent.parent
SLACK_SITECUSTOMIZE = Path(__file__).resolve().parent / "sitecustomize_slack"
SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#world-desk"


@dataclass(frozen=True)
class Story:
    guid: str
    title: str
    description: str
    published: datetime = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)

    @property
    def link(self) -> str:
        return f"https://news.example.org/{self.guid}"


def rss(*stories: Story, title: str = "Example Wire") -> bytes:
    """An RSS 2.0 document with these stories, newest first as feeds list them."""
    entries = "".join(
        f"<item><guid isPermaLink='false'>{escape(s.guid)}</guid><title>{escape(s.title)}</title>"
        f"<link>{escape(s.link)}</link><description>{escape(s.description)}</description>"
        f"<pubDate>{format_datetime(s.published)}</pubDate></item>"
        for s in stories
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>{escape(title)}</title><link>https://news.example.org/</link>"
        f"<description>Wire stories</description>{entries}</channel></rss>"
    ).encode()


BACKFILL = [
    Story("wire-1", "Central bank holds interest rates steady", "The central bank left its key rate unchanged on Monday."),
    Story(
        "wire-2",
        "Putin and Xi praise ties in New Year messages",
        "Russian President Vladimir Putin and Chinese leader Xi Jinping exchanged greetings.",
        datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
    ),
]
XI_PUTIN_CALL = Story(
    "wire-3",
    "Xi Jinping and Vladimir Putin hold phone call on Ukraine",
    "Chinese President Xi Jinping spoke by phone with Russian President Vladimir Putin on Thursday, "
    "the Kremlin said. Putin told Xi that Moscow remained open to talks, and Xi urged both sides to "
    "keep negotiating.",
    datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
)


# One wire story, a rewrite of it by another outlet, and another story about the same man that day.
WIRE_TEXT = (
    "Russian President Vladimir Putin and Chinese President Xi Jinping spoke by telephone on Thursday "
    "about the war in Ukraine, trade between their countries and a planned summit in Beijing, the "
    "Kremlin said. Putin told Xi that Moscow was ready for talks, while Xi urged restraint and said "
    "China would keep working for a ceasefire."
)
REWRITE_TEXT = (
    "Chinese leader Xi Jinping and Russian President Vladimir Putin held a telephone call on Thursday, "
    "discussing Ukraine, bilateral trade and a summit planned in Beijing, according to the Kremlin. "
    "Xi called for restraint and said China would keep working toward a ceasefire; Putin said Moscow "
    "was ready for talks."
)
OTHER_TEXT = (
    "Vladimir Putin signed the federal budget into law on Thursday, raising military spending for a "
    "third year while cutting funding for regional roads and hospitals, the Kremlin said in a statement."
)


# Wall clocks for the pacing tests: a DST-observing zone and a night of quiet hours in it.
PARIS = ZoneInfo("Europe/Paris")
NIGHT = "22:00-07:00 Europe/Paris"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def paris(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=PARIS)


T = TypeVar("T")


def wait_until(
    condition: Callable[[], T], what: str, *, timeout: float = 60, detail: Callable[[], object] | None = None
) -> T:
    """Poll ``condition`` until it returns something truthy, and return that.

    For waiting on an event a test can observe (a request reached a server, a
    row reached a state), never as a fixed pause. On timeout it fails naming
    ``what`` it waited for, with ``detail()`` (what was seen instead) if given.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")
        time.sleep(0.1)


def write_config(
    directory: Path,
    *,
    feeds: Sequence[dict[str, object]],
    channels: dict[str, dict[str, object]] | None = None,
    rules: Sequence[dict[str, object]] = (),
    entities: Sequence[dict[str, object]] = (),
    poll: dict[str, object] | None = None,
    delivery: dict[str, object] | None = None,
    **settings: object,
) -> Path:
    """Write a config directory (JSON is valid YAML, so no quoting surprises).

    Test feeds are served from 127.0.0.1, so ``poll.allow_private`` is true unless
    ``poll`` says otherwise (``None`` there: unset, the default policy).
    """
    directory.mkdir(parents=True, exist_ok=True)
    monitor = {
        "database": str(directory / "state" / "news-monitor.db"),
        "poll": {
            "min_interval": "1s", "default_interval": "1s", "max_interval": "1s", "timeout": "5s",
            "allow_private": True, **(poll or {}),
        },  # fmt: skip
        "delivery": {"interval": "1s", "retry_initial": "1s", "retry_max": "2s", **(delivery or {})},
        "channels": channels or {},
        "feeds": list(feeds),
        # Many daemons run at once in the tests: no dashboard unless a test asks for one (on a free port).
        "web": {"enabled": False},
        **settings,
    }
    (directory / "monitor.yaml").write_text(json.dumps(monitor, indent=2))
    (directory / "rules.yaml").write_text(json.dumps({"rules": list(rules)}, indent=2))
    (directory / "entities.yaml").write_text(json.dumps({"entities": list(entities)}, indent=2))
    return directory


DEFAULT_ENTITIES = [
    {"name": "Xi Jinping", "type": "PERSON", "aliases": ["Xi", "President Xi"]},
    {"name": "Vladimir Putin", "type": "PERSON", "aliases": ["Putin"]},
]


def cli_env(webhook: WebhookReceiver | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWS_MONITOR")}
    env["PYTHONUNBUFFERED"] = "1"
    if webhook is not None:
        env["PYTHONPATH"] = str(SLACK_SITECUSTOMIZE)
        env["NEWS_MONITOR_TEST_SLACK_WEBHOOK_URL"] = webhook.slack_webhook_url
    return env


def run_cli(
    *args: str, config: Path, webhook: WebhookReceiver | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``news-monitor ARGS --config CONFIG`` as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(webhook),
        cwd=config,
    )


class DaemonProcess:
    """``news-monitor run`` in a subprocess, with its log readable as it grows."""

    def __init__(self, config: Path, log_path: Path, webhook: WebhookReceiver | None = None):
        self.config = config
        self.log_path = log_path
        self.webhook = webhook
        self.process: subprocess.Popen[bytes] | None = None
        self._offset = 0

    def start(self) -> DaemonProcess:
        self._offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            env=cli_env(self.webhook),
            cwd=self.config,
        )
        log.close()
        return self

    def log(self) -> str:
        """The log written since this start."""
        with self.log_path.open("rb") as handle:
            handle.seek(self._offset)
            return handle.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern: str, count: int = 1, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            found = [line for line in self.log().splitlines() if regex.search(line)]
            if len(found) >= count:
                return found
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited ({self.process.returncode}) before {pattern!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} log lines matching {pattern!r} within {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def smtp() -> Iterator[SMTPReceiver]:
    with SMTPReceiver() as receiver:
        yield receiver


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[DaemonProcess]]:
    """Daemons started by a test; killed at teardown if the test left them running."""
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()
