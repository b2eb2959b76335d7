"""One rule for every way a feed enters: monitor.yaml, `feeds add`, `feeds import` (OPML), discovery.

And an OPML import that is linear in the file and bounded: bytes, outlines, nesting.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BACKFILL, rss, run_cli, write_config

from monitor.feeds.discover import FeedNamer, feed_links, suggest_name
from monitor.feeds.opml import MAX_DEPTH, MAX_OPML_BYTES, MAX_OUTLINES, OpmlFeed, parse_opml, plan_import
from monitor.feeds.urls import MAX_URL_LENGTH, check_feed_url

# URL -> the reason every way in gives for refusing it.
REFUSED = {
    "file:///etc/passwd": "only http and https URLs are supported, not file",
    "gopher://old.example/1": "only http and https URLs are supported, not gopher",
    "javascript:alert(1)": "only http and https URLs are supported, not javascript",
    "feeds/world.xml": "a relative URL: give the full address, starting with http:// or https://",
    "http://exa mple.org/rss": "a URL cannot contain spaces or control characters",
    "http:///rss.xml": "no host name",
}


def feeds_of(config: Path) -> dict[str, dict]:
    result = run_cli("feeds", "list", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return {record["name"]: record for record in map(json.loads, result.stdout.splitlines())}


def opml_file(path: Path, *outlines: str) -> Path:
    body = "\n".join(outlines)
    path.write_text(f'<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n{body}\n</body>\n</opml>\n')
    return path


# --- the same refusal on every way in ------------------------------------------------


@pytest.mark.parametrize(("url", "reason"), sorted(REFUSED.items()))
def test_the_rule(url, reason):
    with pytest.raises(ValueError) as caught:
        check_feed_url(url)
    assert reason in str(caught.value)


def test_every_way_in_refuses_the_same_urls_for_the_same_reason(tmp_path):
    urls = sorted(REFUSED)
    # monitor.yaml: `check` names each feed's line.
    declared = write_config(tmp_path / "declared", feeds=[{"name": f"f{n}", "url": url} for n, url in enumerate(urls)])
    checked = run_cli("check", config=declared)
    assert checked.returncode == 1
    for n, url in enumerate(urls):
        assert f"feed 'f{n}': url: feed URL {url}: {REFUSED[url]}" in checked.stderr

    # feeds add: one line, before any request.
    config = write_config(tmp_path / "config", feeds=[])
    for url in urls:
        added = run_cli("feeds", "add", url, config=config)
        assert added.returncode == 1
        [line] = added.stderr.splitlines()
        assert line.startswith("news-monitor: ") and REFUSED[url] in line

    # feeds import: each refused outline named with its position; the good one is imported.
    outlines = [f'<outline text="Bad {n}" xmlUrl="{url}"/>' for n, url in enumerate(urls)]
    path = opml_file(tmp_path / "mixed.opml", '<outline text="Good" xmlUrl="https://good.example/rss"/>', *outlines)
    imported = run_cli("feeds", "import", str(path), config=config)
    assert imported.returncode == 1
    assert f"imported 1 feed from {path} (0 already there, {len(urls)} refused)" in imported.stdout
    refusals = imported.stderr.splitlines()
    assert len(refusals) == len(urls)
    for n, (url, line) in enumerate(zip(urls, refusals, strict=True)):
        assert line.startswith(f"news-monitor: {path}:{5 + n}:1: outline 'Bad {n}': {url}: {REFUSED[url]}"), line
        assert line.endswith("; not imported")
    assert [feed["url"] for feed in feeds_of(config).values()] == ["https://good.example/rss"]


def test_a_page_linking_to_a_url_that_cannot_be_a_feed_offers_only_the_good_ones():
    page = (
        '<link rel="alternate" type="application/rss+xml" href="http://exa mple.org/rss">'
        '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
        '<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
    )
    assert [link.url for link in feed_links(page, "https://news.example/")] == ["https://news.example/atom.xml"]


def test_a_url_too_long_is_refused_by_the_config(tmp_path):
    long_url = "https://news.example/" + "a" * MAX_URL_LENGTH
    config = write_config(tmp_path / "config", feeds=[{"name": "long", "url": long_url}])
    checked = run_cli("check", config=config)
    assert checked.returncode == 1 and f"URL longer than {MAX_URL_LENGTH:,} characters" in checked.stderr


# --- OPML import: bounded, linear, and what it does with known feeds ---------------------


def test_an_opml_file_with_too_many_outlines_is_refused_whole_with_where(tmp_path):
    config = write_config(tmp_path / "config", feeds=[])
    outlines = (f'<outline xmlUrl="https://feeds.example/{n}.xml"/>' for n in range(MAX_OUTLINES + 1))
    path = opml_file(tmp_path / "huge.opml", *outlines)
    result = run_cli("feeds", "import", str(path), config=config)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line == (
        f"news-monitor: {path}:{4 + MAX_OUTLINES}:1: more than {MAX_OUTLINES:,} outlines; "
        "an OPML import reads at most that many: split it"
    )
    assert feeds_of(config) == {}


def test_an_opml_file_too_big_is_refused_before_it_is_parsed(tmp_path):
    config = write_config(tmp_path / "config", feeds=[])
    path = tmp_path / "big.opml"
    with path.open("wb") as file:
        file.write(b'<opml version="2.0"><body>')
        file.truncate(MAX_OPML_BYTES + 10)  # NUL bytes: not even XML, and never parsed
    result = run_cli("feeds", "import", str(path), config=config)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"news-monitor: {path}:1:1: the file is 32 MiB; an OPML import reads at most 32 MiB")


def test_outlines_nested_5000_deep_get_a_position_not_a_traceback(tmp_path):
    config = write_config(tmp_path / "config", feeds=[])
    path = tmp_path / "deep.opml"
    path.write_text(
        '<opml version="2.0"><body>\n'
        + '<outline text="f">\n' * 5000
        + '<outline xmlUrl="https://a.example/rss"/>'
        + "</outline>" * 5000
        + "</body></opml>"
    )
    result = run_cli("feeds", "import", str(path), config=config)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    # Line 1 opens the body; outline N starts line N + 1, and outline MAX_DEPTH + 1 is one too deep.
    assert line == f"news-monitor: {path}:{MAX_DEPTH + 2}:1: outlines nested more than {MAX_DEPTH} deep"


def test_import_names_untitled_feeds_of_one_host_in_order_and_brings_back_removed_feeds(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(tmp_path / "config", feeds=[])
    removed_url = feed_server.url("/wire.xml")
    assert run_cli("feeds", "add", removed_url, "--name", "old-wire", config=config).returncode == 0
    assert run_cli("feeds", "remove", "old-wire", config=config).returncode == 0
    outlines = [f'<outline xmlUrl="https://feeds.example.com/{n}.xml"/>' for n in range(5)]
    path = opml_file(tmp_path / "list.opml", *outlines, f'<outline text="Wire" xmlUrl="{removed_url}"/>')
    imported = run_cli("feeds", "import", str(path), config=config)
    assert imported.returncode == 0, imported.stderr
    assert "imported 6 feeds" in imported.stdout
    feeds = feeds_of(config)
    assert sorted(feeds) == ["feeds-example-com", *(f"feeds-example-com-{n}" for n in range(2, 6)), "old-wire"]
    assert feeds["old-wire"]["url"] == removed_url  # back under its name, its history kept


def test_plan_import_is_one_pass_over_known_feeds_and_subscriptions():
    known = [("a-example", "https://a.example/old", False), ("b", "https://b.example/rss", True)]
    feeds = [
        OpmlFeed("https://b.example/rss", "B again"),
        OpmlFeed("https://a.example/new"),
        OpmlFeed("https://a.example/new2"),
        OpmlFeed("ftp://a.example/x", "FTP", line=7, column=3),
        OpmlFeed("https://a.example/old", "Old"),
    ]
    plan = plan_import(feeds, known)
    assert [(spec.name, spec.url) for spec in plan.add] == [
        ("a-example-2", "https://a.example/new"),
        ("a-example-3", "https://a.example/new2"),
        ("a-example", "https://a.example/old"),
    ]
    assert plan.present == 1
    [refused] = plan.refused
    assert (refused.feed.line, refused.feed.column) == (7, 3)
    assert (
        str(refused)
        == "outline 'FTP': ftp://a.example/x: only http and https URLs are supported, not ftp; not imported"
    )


def test_the_namer_gives_the_names_suggest_name_gives():
    taken = {"wire", "wire-3", "other"}
    namer = FeedNamer(taken)
    names = [namer.name("Wire", "https://x.example/") for _ in range(4)]
    assert names == ["wire-2", "wire-4", "wire-5", "wire-6"]
    assert suggest_name("Wire", "https://x.example/", taken) == "wire-2"


def test_opml_positions_and_repeats_are_read_in_one_pass():
    data = (
        b'<opml version="2.0"><body>\n'
        b'<outline text="A">\n  <outline xmlUrl="https://x.example/rss" text="First"/>\n</outline>\n'
        b'<outline text="B"><outline xmlUrl="https://x.example/rss" category="a,C"/></outline>\n'
        b"</body></opml>"
    )
    [feed] = parse_opml(data)
    assert (feed.title, feed.tags, feed.line, feed.column) == ("First", ("A", "B", "C"), 3, 3)
