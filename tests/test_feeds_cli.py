"""Managing feeds from the CLI: add (with discovery), list, remove, OPML import and export."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import BACKFILL, rss, run_cli, write_config

from monitor.feeds.opml import parse_opml

OPML = Path(__file__).parent / "data" / "opml" / "subscriptions.opml"


def feeds_of(config: Path) -> dict[str, dict]:
    result = run_cli("feeds", "list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {record["name"]: record for record in map(json.loads, result.stdout.splitlines())}


def test_add_finds_the_feed_behind_a_page_and_polls_it(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL, title="Example Wire"))
    page = (
        "<!doctype html><html><head><title>Example News</title>"
        '<link rel="alternate" type="application/rss+xml" title="All stories" href="/wire.xml">'
        "</head><body><h1>Example News</h1></body></html>"
    )
    feed_server.route("/", page.encode(), content_type="text/html; charset=utf-8")
    config = write_config(tmp_path / "config", feeds=[{"name": "config-feed", "url": feed_server.url("/wire.xml?c=1")}])

    added = run_cli("feeds", "add", feed_server.url("/"), "--tag", "wire", "--interval", "5m", config=config)
    assert added.returncode == 0, added.stderr
    assert f"added feed 'example-wire': {feed_server.url('/wire.xml')} (Example Wire, 2 items now)" in added.stdout
    feeds = feeds_of(config)
    assert feeds["example-wire"]["source"] == "cli" and feeds["example-wire"]["tags"] == ["wire"]
    assert feeds["example-wire"]["interval_seconds"] == 300
    assert feeds["config-feed"]["source"] == "config"

    again = run_cli("feeds", "add", feed_server.url("/wire.xml"), config=config)
    assert again.returncode == 1 and "already has that name or URL" in again.stderr

    polled = run_cli("poll", "--once", "--feed", "example-wire", config=config)
    assert polled.returncode == 0, polled.stderr
    assert "poll.done feed=example-wire entries=2" in polled.stderr

    assert "declared in monitor.yaml" in run_cli("feeds", "remove", "config-feed", config=config).stderr
    removed = run_cli("feeds", "remove", "example-wire", config=config)
    assert removed.returncode == 0
    assert set(feeds_of(config)) == {"config-feed"}


def test_add_says_when_a_page_links_to_no_feed(tmp_path, feed_server):
    feed_server.route("/", b"<html><head><title>Nothing</title></head></html>", content_type="text/html")
    config = write_config(tmp_path / "config", feeds=[])
    result = run_cli("feeds", "add", feed_server.url("/"), config=config)
    assert result.returncode == 1 and "neither a feed nor a page that links to one" in result.stderr


def test_opml_import_then_export_keeps_every_feed_and_its_tags(tmp_path):
    config = write_config(tmp_path / "config", feeds=[])
    imported = run_cli("feeds", "import", str(OPML), config=config)
    assert imported.returncode == 0, imported.stderr
    original = parse_opml(OPML.read_bytes())
    assert f"imported {len(original)} feeds" in imported.stdout
    assert "(0 already there)" in imported.stdout
    assert "already there" in run_cli("feeds", "import", str(OPML), config=config).stdout

    exported = run_cli("feeds", "export", config=config)
    assert exported.returncode == 0, exported.stderr
    round_trip = {feed.url: set(feed.tags) for feed in parse_opml(exported.stdout.encode())}
    assert round_trip == {feed.url: set(feed.tags) for feed in original}


def test_a_broken_opml_file_is_reported_with_its_position(tmp_path):
    config = write_config(tmp_path / "config", feeds=[])
    broken = tmp_path / "broken.opml"
    broken.write_text("<opml version='2.0'><body>\n<outline text='a' xmlUrl='http://a/feed'>\n</body></opml>")
    result = run_cli("feeds", "import", str(broken), config=config)
    assert result.returncode == 1
    assert result.stderr.startswith(f"news-monitor: {broken}:3:")
