"""Trying rules on history through the real CLI: rules test, rules lint, explain."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import BACKFILL, DEFAULT_ENTITIES, XI_PUTIN_CALL, Story, rss, run_cli, write_config

# The same wire story on two feeds (same link), and a different story.
COPY = Story(XI_PUTIN_CALL.guid, XI_PUTIN_CALL.title, XI_PUTIN_CALL.description)
SPORT = Story("wire-9", "Putin attends ice hockey match", "Vladimir Putin watched a hockey game. Xi was not there.")


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A config directory whose database holds two feeds' worth of polled items."""
    from feedserver import FeedServer

    tmp = tmp_path_factory.mktemp("history")
    with FeedServer() as server:
        server.route("/a.xml", rss(XI_PUTIN_CALL, SPORT, *BACKFILL))
        server.route("/b.xml", rss(COPY))
        config = write_config(
            tmp / "config",
            feeds=[{"name": "a", "url": server.url("/a.xml"), "tags": ["wire"]}, {"name": "b", "url": server.url("/b.xml")}],
            channels={"one": {"url": "json://127.0.0.1:9/x"}, "two": {"url": "json://127.0.0.1:9/y"}},
            rules=[
                {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["one", "two"]},
                {"name": "impossible", "query": "Putin AND NOT Putin", "notify": ["one"]},
                {"name": "unheard", "query": "Zelensky AND Putin", "notify": ["one"]},
            ],
            entities=DEFAULT_ENTITIES,
        )
        result = run_cli("poll", "--once", config=config)
        assert result.returncode == 0, result.stderr
    return config


def test_rules_test_counts_per_day_and_stories_once(history):
    result = run_cli("rules", "test", "xi-putin", config=history)
    assert result.returncode == 0, result.stderr
    today = datetime.now(UTC).date().isoformat()
    [bar] = [line for line in result.stdout.splitlines() if line.strip().startswith(today)]
    assert bar.split()[1] == "4"  # wire-2, wire-3 on both feeds, and the hockey story
    # Two feeds carried the call: one story. Four items, three stories, two channels each.
    assert "4 of 5 stored items match 'Xi AND Putin': 3 stories, 6 alerts to 2 channels" in result.stdout


def test_rules_test_json_lines(history):
    result = run_cli("rules", "test", "person:Putin AND tag:wire", "--json", "--limit", "2", config=history)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 2
    for line in lines:
        assert line["feed"] == "a"
        assert {"feed", "guid", "link", "title", "why"} <= set(line)
        assert any(hit["entity"] == "Vladimir Putin" for hit in line["why"])


def test_a_query_with_a_syntax_error_shows_where(history):
    result = run_cli("rules", "test", "Xi AND (Putin", config=history)
    assert result.returncode == 1
    assert "Xi AND (Putin" in result.stderr and "^" in result.stderr and "column" in result.stderr


def test_rules_lint_flags_impossible_and_unheard_rules(history):
    result = run_cli("rules", "lint", config=history)
    assert result.returncode == 1, result.stdout
    impossible = [line for line in result.stdout.splitlines() if "'impossible'" in line]
    assert impossible and impossible[0].split(": ")[1].startswith("error")
    assert "rules.yaml:" in impossible[0]
    unheard = [line for line in result.stdout.splitlines() if "'unheard'" in line and "Zelensky" in line]
    assert unheard, result.stdout
    assert not any("'xi-putin'" in line and "error" in line for line in result.stdout.splitlines())


def test_explain_highlights_the_hits(history):
    result = run_cli("explain", XI_PUTIN_CALL.link, "xi-putin", config=history)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "title: Xi Jinping and Vladimir Putin hold phone call on Ukraine" in out
    assert "matches:" in out and "Xi ->" in out and "Putin ->" in out
    assert "entities:" in out and "Vladimir Putin (PERSON)" in out


def test_explain_says_when_it_does_not_match(history):
    result = run_cli("explain", "wire-1", "xi-putin", config=history)
    assert result.returncode == 1
    assert "does NOT match" in result.stdout
    missing = run_cli("explain", "no-such-item", "xi-putin", config=history)
    assert missing.returncode == 1 and "no stored item" in missing.stderr


def test_search_finds_and_highlights(history):
    result = run_cli("search", "hockey", config=history)
    assert result.returncode == 0, result.stderr
    assert "Putin attends ice hockey match" in result.stdout
    assert "watched a hockey game" in result.stdout
    assert result.stdout.strip().endswith("1 item")
    as_json = run_cli("search", "phone call", "--json", config=history)
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert {r["feed"] for r in records} == {"a", "b"} and all(r["title"] == XI_PUTIN_CALL.title for r in records)
