"""The CLI in words a user understands, through the real CLI: rule-name typos, raw guids, positions, plurals,
the search syntax, highlights on a terminal, --debug."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DEFAULT_ENTITIES, cli_env, run_cli, write_config

# Permalink guids as a feed writes them: relative, resolved against the feed's URL when stored.
FEED = """<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>
<link>https://news.example.org/</link><description>d</description>
<item><guid>123</guid><title>Xi Jinping and Vladimir Putin hold phone call</title>
<link>https://news.example.org/call</link><description>Xi spoke with Putin on Thursday.</description></item>
<item><guid>/a/1</guid><title>Putin attends ice hockey match</title>
<link>https://news.example.org/hockey</link><description>Vladimir Putin watched a hockey game.</description></item>
</channel></rss>"""


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    from feedserver import FeedServer

    tmp = tmp_path_factory.mktemp("words")
    with FeedServer() as server:
        server.route("/feeds/a.xml", FEED.encode(), content_type="application/rss+xml")
        config = write_config(
            tmp / "config",
            feeds=[{"name": "a", "url": server.url("/feeds/a.xml")}],
            rules=[
                {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]},
                {"name": "impossible", "query": "Putin AND NOT Putin", "notify": ["console"]},
            ],
            entities=DEFAULT_ENTITIES,
        )
        result = run_cli("poll", "--once", config=config)
        assert result.returncode == 0, result.stderr
    return config


def _one_line(stderr: str) -> str:
    [line] = [line for line in stderr.splitlines() if line.strip()]
    return line


# 1. A mistyped rule name is refused with the nearest rule; --query forces a query.


def test_a_mistyped_rule_name_is_refused_with_the_nearest_rule(polled):
    result = run_cli("rules", "test", "xi-putn", config=polled)
    assert result.returncode == 1, result.stdout
    assert _one_line(result.stderr) == (
        "news-monitor: no rule named 'xi-putn'; did you mean 'xi-putin'? (--query to search for the words)"
    )
    explained = run_cli("explain", "1", "xi-putn", config=polled)
    assert explained.returncode == 1, explained.stdout
    assert _one_line(explained.stderr).startswith("news-monitor: no rule named 'xi-putn'; did you mean 'xi-putin'?")
    # Near no rule (a hyphenated name, say): searched for as words, and said so.
    far = run_cli("rules", "test", "al-Assad", config=polled)
    assert far.returncode == 0, far.stderr
    assert "note: no rule is named 'al-Assad'; searching for the words" in far.stderr
    assert "stored items match 'al-Assad'" in far.stdout
    close = run_cli("rules", "test", "xiputin", config=polled)
    assert close.returncode == 1 and "did you mean 'xi-putin'?" in close.stderr


def test_query_forces_a_query_and_plain_queries_still_work(polled):
    forced = run_cli("rules", "test", "xi-putn", "--query", config=polled)
    assert forced.returncode == 0, forced.stderr
    assert "0 of 2 stored items match 'xi-putn'" in forced.stdout
    plain = run_cli("rules", "test", "Putin", config=polled)
    assert plain.returncode == 0, plain.stderr
    assert "2 of 2 stored items match 'Putin'" in plain.stdout
    scoped = run_cli("rules", "test", "person:Putin", config=polled)
    assert scoped.returncode == 0, scoped.stderr


# 2. explain finds an item by its guid as the feed wrote it.


@pytest.mark.parametrize(("guid", "title"), [("123", "phone call"), ("/a/1", "hockey")])
def test_explain_finds_an_item_by_its_raw_guid(polled, guid, title):
    result = run_cli("explain", guid, "Putin", config=polled)
    assert result.returncode == 0, result.stderr
    assert title in result.stdout and "matches:" in result.stdout


# 3. rules lint reports file:line:column: severity: message.


def test_rules_lint_writes_file_line_column(polled):
    result = run_cli("rules", "lint", config=polled)
    assert result.returncode == 1
    [line] = [line for line in result.stdout.splitlines() if "'impossible'" in line]
    assert re.match(r"^\S+rules\.yaml:\d+:\d+: error: rule 'impossible': can never match", line), line
    assert "(column" not in line
    # The column points at the query's conflicting term inside rules.yaml.
    path, lineno, column = line.split(": ")[0].rsplit(":", 2)
    text = Path(path).read_text().splitlines()[int(lineno) - 1]
    assert text[int(column) - 1 :].startswith("NOT Putin") or text[int(column) - 1 :].startswith("Putin")


# 4. Counts in words: one item, one rule, one feed.


def test_counts_say_one_item_one_rule_one_feed(tmp_path, polled):
    searched = run_cli("search", "hockey", config=polled)
    assert searched.returncode == 0, searched.stderr
    assert searched.stdout.strip().splitlines()[-1] == "1 item"
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "down", "url": "http://127.0.0.1:9/x.xml"}],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
    )
    polled_once = run_cli("poll", "--once", config=config)
    assert "polled 1 feed: 0 ok, 1 failed; 0 new or changed items; 0 alerts queued" in polled_once.stderr
    linted = run_cli("rules", "lint", config=config)
    assert "1 rule checked against 0 stored items: 0 findings, 0 errors" in linted.stdout
    listed = run_cli("feeds", "list", config=config)
    assert listed.stdout.strip().splitlines()[-1] == "1 feed"
    write_config(
        tmp_path / "config",
        feeds=[{"name": "down", "url": "http://127.0.0.1:9/x.xml", "interval": "5m"}],
    )
    listed = run_cli("feeds", "list", config=config)
    assert "every 5 min" in listed.stdout and "0:05:00" not in listed.stdout


# 5. search takes full-text syntax; the rule language is pointed at `rules test`.


@pytest.mark.parametrize("query", ["person:Putin", "Xi NEAR/5 Putin", "/hock.y/", "Putin -hockey"])
def test_search_refuses_the_rule_language(polled, query):
    result = run_cli("search", query, config=polled)
    assert result.returncode == 1, result.stdout
    line = _one_line(result.stderr)
    assert "full-text" in line and "rules test" in line, line


def test_search_help_names_its_syntax(polled):
    result = run_cli("search", "--help", config=polled)
    assert "full-text" in result.stdout and "prefix*" in result.stdout and "rules test" in result.stdout


# 6. Highlights: bold on a terminal, plain when piped or with NO_COLOR.


def _on_a_terminal(args: list[str], config: Path, *, no_color: bool) -> str:
    env = {key: value for key, value in cli_env().items() if key != "NO_COLOR"}
    if no_color:
        env["NO_COLOR"] = "1"
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args, "--config", str(config)],
        stdout=follower, stderr=subprocess.DEVNULL, env=env, cwd=config,
    )  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    process.wait(timeout=120)
    os.close(leader)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("args", [["search", "hockey"], ["explain", "/a/1", "Putin"]], ids=["search", "explain"])
def test_highlights_are_bold_on_a_terminal_and_plain_otherwise(polled, args):
    colored = _on_a_terminal(args, polled, no_color=False)
    assert "\x1b[1m" in colored and "**" not in colored, colored
    no_color = _on_a_terminal(args, polled, no_color=True)
    assert "\x1b[" not in no_color and "**" not in no_color and "hockey" in no_color
    piped = run_cli(*args, config=polled)
    assert "\x1b[" not in piped.stdout and "**" not in piped.stdout and "hockey" in piped.stdout


# 7. --debug shows the traceback of a product error; without it, one line.


def test_debug_shows_the_traceback(tmp_path):
    database = tmp_path / "garbage.db"
    database.write_bytes(b"this is not an SQLite database " * 64)
    config = write_config(tmp_path / "config", feeds=[], database=str(database))
    plain = run_cli("status", config=config)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    debug = run_cli("--debug", "status", config=config)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "StorageError" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("news-monitor: ")
