"""monitor.feeds.parse on fixture feeds under tests/data/feeds/.

Each well-formed fixture ``NAME.EXT`` has ``NAME.expected.json`` beside it: the
parsed feed as it should come out, written by hand from the fixture.
"""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer

from monitor.errors import FeedError, ParseError
from monitor.feeds.html_text import html_to_text
from monitor.feeds.parse import ParsedFeed, parse_feed

FEEDS = Path(__file__).parent / "data" / "feeds"

# fixture -> (the URL it was fetched from, the Content-Type it was served with)
GOLDEN = {
    "rss20.xml": ("https://herald.example.com/world/rss.xml", "application/rss+xml; charset=utf-8"),
    "rss091.xml": ("http://courier.example.com/rss.xml", "text/xml; charset=iso-8859-1"),
    "rss10.rdf": ("https://wire.example.org/rss10", "application/rdf+xml"),
    "atom10.xml": ("https://pacific.example.net/news/atom.xml", "application/atom+xml"),
    "atom03.xml": ("https://andes.example.org/atom.xml", "application/atom+xml"),
    "jsonfeed10.json": ("https://gazette.example.no/feed.json", "application/feed+json"),
    "jsonfeed11.json": ("https://sahel.example.com/feed.json", "application/json"),
    "windows-1251.xml": ("https://volga.example.ru/rss", "application/rss+xml; charset=cp1251"),
    "iso-8859-1.xml": ("https://journal.example.ch/rss", "text/xml; charset=ISO-8859-1"),
    "utf8-bom.xml": ("https://kultur.example.de/rss", "application/xml"),
    "utf-16.xml": ("https://athina.example.gr/rss", "application/xml"),
    "relative-links.xml": ("https://citydesk.example.com/feeds/city.xml", "application/rss+xml"),
}  # fmt: skip


def fixture(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def expected(name: str) -> dict[str, Any]:
    path = FEEDS / (name.rsplit(".", 1)[0] + ".expected.json")
    golden: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return golden


def as_json(parsed: ParsedFeed) -> dict[str, Any]:
    data = asdict(parsed)
    data["hubs"] = list(data["hubs"])
    for item in data["items"]:
        item["tags"] = list(item["tags"])
        published = item["published_at"]
        item["published_at"] = published.isoformat() if published else None
    return data


def parse(name: str, content_type: str | None = "absent") -> ParsedFeed:
    url, served_as = GOLDEN.get(name, ("https://feeds.example.com/feed", None))
    return parse_feed(
        fixture(name), url=url, content_type=served_as if content_type == "absent" else content_type
    )


# --- golden fixtures -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_fixture_parses_to_its_golden_result(name: str) -> None:
    assert as_json(parse(name)) == expected(name)


def test_published_dates_are_utc_aware() -> None:
    dates = [
        item.published_at
        for name in ("rss20.xml", "rss10.rdf", "atom10.xml", "atom03.xml", "jsonfeed10.json")
        for item in parse(name).items
        if item.published_at is not None
    ]
    assert len(dates) == 9
    assert all(date.tzinfo is not None and date.utcoffset() == timedelta(0) for date in dates)


def test_entry_without_title_text_or_link_is_dropped() -> None:
    # rss20.xml ends with an <item> holding only a <category>.
    assert [item.title for item in parse("rss20.xml").items][-1] == (
        "Storm closes ports along the Adriatic coast"
    )
    # jsonfeed10.json ends with {"id": "empty-one"}.
    assert "empty-one" not in [item.guid for item in parse("jsonfeed10.json").items]


def test_script_in_content_never_reaches_text() -> None:
    text = parse("rss20.xml").items[0].text
    assert "trackReader" not in text
    assert "<" not in text


# --- encodings -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["windows-1251.xml", "iso-8859-1.xml"])
@pytest.mark.parametrize(
    "content_type", ["application/rss+xml", "text/xml", "application/octet-stream", None]
)
def test_single_byte_feed_without_any_charset_hint(name: str, content_type: str | None) -> None:
    # No XML declaration, no charset parameter: the charset has to be detected.
    parsed = parse(name, content_type=content_type)
    golden = expected(name)
    assert parsed.title == golden["title"]
    assert [(i.title, i.text) for i in parsed.items] == [
        (i["title"], i["text"]) for i in golden["items"]
    ]


def test_windows_1251_header_charset_is_honoured_with_text_xml() -> None:
    parsed = parse("windows-1251.xml", content_type='text/xml; charset="Windows-1251"')
    assert parsed.items[0].title == "Путин провёл переговоры с Си Цзиньпином"


def test_utf8_feed_without_declaration_or_content_type() -> None:
    body = (
        "<rss version='2.0'><channel><title>Kraków</title>"
        "<item><title>Łódź wins the bid</title><link>https://pl.example/1</link></item>"
        "</channel></rss>"
    ).encode()
    parsed = parse_feed(body, url="https://pl.example/rss", content_type=None)
    assert (parsed.title, parsed.items[0].title) == ("Kraków", "Łódź wins the bid")


@pytest.mark.parametrize("codec", ["utf-16-be", "utf-16-le", "utf-32", "utf-8"])
def test_unicode_feed_in_any_form_gives_the_same_items(codec: str) -> None:
    # utf-16.xml says encoding="UTF-16" and has a DOCTYPE with an entity.
    body = fixture("utf-16.xml").decode("utf-16").encode(codec)
    if codec == "utf-8":
        body = body.replace(b'encoding="UTF-16"', b'encoding="utf-8"')
    parsed = parse_feed(body, url="https://athina.example.gr/rss", content_type="application/xml")
    assert as_json(parsed) == expected("utf-16.xml")


def test_wrong_http_charset_falls_back_to_the_declaration() -> None:
    body = b'<?xml version="1.0" encoding="windows-1251"?>' + fixture("windows-1251.xml")
    parsed = parse_feed(
        body, url="https://volga.example.ru/rss", content_type="text/xml; charset=utf-8"
    )
    assert parsed.items[0].title == "Путин провёл переговоры с Си Цзиньпином"
    assert parsed.warning == "the document is declared as utf-8 but decodes as windows-1251"


# --- not a feed ------------------------------------------------------------------


def test_malformed_xml_without_entries_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as caught:
        parse("malformed.xml")
    assert str(caught.value) == (
        "https://feeds.example.com/feed: not a well-formed feed: "
        "not well-formed (invalid token) at line 3, column 2"
    )
    assert isinstance(caught.value, FeedError) and isinstance(caught.value, ValueError)


def test_recoverable_feed_is_accepted_with_a_warning() -> None:
    body = (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<rss version="2.0"><channel><title>Wire</title>\n'
        b"<item><title>Talks&nbsp;resume</title><link>https://wire.example/1</link></item>\n"
        b"</channel></rss>\n"
    )
    parsed = parse_feed(body, url="https://wire.example/rss", content_type="application/rss+xml")
    assert parsed.items[0].title == "Talks resume"
    assert parsed.warning == "undefined entity at line 3, column 19"


def test_html_page_names_the_feed_it_links_to() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(
            fixture("html-page.html"),
            url="https://herald.example.com/world/",
            content_type="text/html; charset=utf-8",
        )
    assert str(caught.value) == (
        "https://herald.example.com/world/: looks like an HTML page, not a feed; "
        "the page links to a feed at https://herald.example.com/world/rss.xml"
    )


def test_html_page_without_feed_link_served_as_xml() -> None:
    page = b"<html><head><title>Login</title></head><body><form>Sign in</form></body></html>"
    with pytest.raises(ParseError, match=r": looks like an HTML page, not a feed$"):
        parse_feed(page, url="https://paywall.example/rss", content_type="application/xml")


@pytest.mark.parametrize(
    "content_type", ["text/html; charset=utf-8", "text/plain", "application/octet-stream"]
)
def test_feed_served_with_a_wrong_media_type_is_still_a_feed(content_type: str) -> None:
    parsed = parse("rss20.xml", content_type=content_type)
    assert as_json(parsed) == expected("rss20.xml")


def test_valid_feed_without_items_is_empty_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title></channel></rss>'
    parsed = parse_feed(body, url="https://quiet.example/rss", content_type="application/rss+xml")
    assert (parsed.title, parsed.items) == ("Quiet", [])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the response is empty, not a feed"),
        (b'{"items": [}', "invalid JSON: Expecting value at line 1, column 12"),
        (b'{"title": "Not a feed"}', 'JSON, but not a JSON Feed (no "items" list)'),
        (b"[1, 2, 3]", 'JSON, but not a JSON Feed (no "items" list)'),
    ],
)
def test_json_problems_are_parse_errors(body: bytes, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, url="https://j.example/feed.json", content_type="application/json")
    assert str(caught.value) == f"https://j.example/feed.json: {message}"


def test_json_feed_is_recognised_without_a_json_content_type() -> None:
    parsed = parse_feed(
        fixture("jsonfeed11.json"),
        url="https://sahel.example.com/feed.json",
        content_type="text/plain",
    )
    assert parsed.items[0].title == "Niger's junta postpones elections"


def test_json_feed_tolerates_rfc822_dates_and_bare_author_names() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1",
            "title": "Loose",
            "author": "Desk Editor",
            "items": [
                {
                    "id": "a1",
                    "title": "Ports reopen",
                    "date_published": "Tue, 13 Feb 2024 08:00:00 +0100",
                    "tags": "not-a-list",
                }
            ],
        }
    ).encode()
    [item] = parse_feed(body, url="https://loose.example/feed.json").items
    assert item.published_at == datetime(2024, 2, 13, 7, 0, tzinfo=UTC)
    assert (item.author, item.tags) == ("Desk Editor", ())


def test_bytes_naming_a_local_file_are_content_not_a_path(tmp_path: Path) -> None:
    feed_file = tmp_path / "local.xml"
    feed_file.write_bytes(fixture("rss20.xml"))
    with pytest.raises(ParseError):
        parse_feed(str(feed_file).encode(), url="https://x.example/rss", content_type=None)


# --- hostile documents -----------------------------------------------------------


def parse_in_bounded_memory(name: str) -> ParsedFeed:
    """Parse a fixture and check it never held more than 50 MB at once."""
    tracemalloc.start()
    try:
        parsed = parse(name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024
    return parsed


def test_quadratic_entity_blowup_is_not_expanded() -> None:
    content = fixture("quadratic-blowup.xml")
    assert len(content) < 110_000  # 40 KB entity x 20,000 references = 800 MB if expanded
    parsed = parse_in_bounded_memory("quadratic-blowup.xml")
    [item] = parsed.items
    assert item.title == "Blowup"
    assert "A" * 100 not in item.text
    assert len(item.text) < len(content)
    assert parsed.warning is not None and parsed.warning.startswith("undefined entity")


def test_billion_laughs_is_not_expanded() -> None:
    # The DOCTYPE shares a line with the XML declaration, which feedparser's
    # own DOCTYPE handling does not see; expat would get the entities.
    parsed = parse_in_bounded_memory("billion-laughs.xml")
    [item] = parsed.items
    assert item.title == "Lol"
    assert "lollol" not in item.text


def test_entities_hidden_by_utf7_are_not_expanded() -> None:
    # In UTF-7 "+ADw-" is "<": the DOCTYPE only exists once the text is decoded.
    entity = "A" * 5_000
    body = (
        b'<?xml version="1.0" encoding="utf-7"?>\n'
        b'+ADw-!DOCTYPE rss [\n+ADw-!ENTITY a "' + entity.encode() + b'"+AD4-\n]+AD4-\n'
        b"<rss version='2.0'><channel><title>Seven</title><item><title>Hidden</title>"
        b"<description>" + b"&a;" * 2_000 + b"</description></item></channel></rss>"
    )
    [item] = parse_feed(body, url="https://x.example/rss", content_type=None).items
    assert item.title == "Hidden"
    assert "A" * 100 not in item.text


def test_external_file_entity_is_not_read() -> None:
    [item] = parse("xxe-file.xml").items
    assert item.title == "Leak"
    assert "root:" not in item.text
    assert item.text.startswith("before") and item.text.endswith("after")


def test_external_http_entities_are_never_fetched() -> None:
    with FeedServer() as server:
        server.route("/secret", b"SECRET-PAYLOAD", content_type="text/plain")
        server.route("/evil.dtd", b'<!ENTITY steal SYSTEM "/secret">', content_type="text/plain")
        body = f"""<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY remote SYSTEM "{server.url("/secret")}">
  <!ENTITY % dtd SYSTEM "{server.url("/evil.dtd")}">
  %dtd;
]>
<rss version="2.0"><channel><title>T</title>
<item><title>Remote</title><link>/1</link><description>a &remote; b</description></item>
</channel></rss>""".encode()
        [item] = parse_feed(body, url="https://x.example/rss", content_type="application/xml").items
        assert "SECRET" not in item.text
        assert server.requests == []


# --- html_to_text ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>First paragraph.</p><p>Second one.</p>", "First paragraph.\nSecond one."),
        ("Line one<br>line two<br/>line three", "Line one\nline two\nline three"),
        ("<ul><li>Kyiv</li><li>Kharkiv</li></ul>", "Kyiv\nKharkiv"),
        ("<h2>Headline</h2>Body text", "Headline\nBody text"),
        ("<blockquote>“No comment,” he said.</blockquote>", "“No comment,” he said."),
        ("<table><tr><td>Oil</td><td>$82</td></tr><tr><td>Gas</td><td>$2.7</td></tr></table>",
         "Oil $82\nGas $2.7"),
        ("Tom &amp; Jerry &lt;3 caf&eacute; &#8212; &#x41;", "Tom & Jerry <3 café — A"),
        ("<script>var x = '<p>hidden</p>';</script>Visible", "Visible"),
        ("<style>p { color: red }</style><noscript>Enable JS</noscript>Shown", "Shown"),
        ("<!-- a comment -->Text", "Text"),
        ("  lots   of\n\n  space\t\there  ", "lots of\nspace here"),
        ("<p>\n   Source\n   formatting\n</p>", "Source formatting"),
        ("Pu<span>tin</span> and X<b>i</b>", "Putin and Xi"),
        ("Soft\u00adhyphen and zero\u200bwidth", "Softhyphen and zerowidth"),
        ("One&nbsp;&nbsp;two", "One two"),
        ("<div><div><p>Nested</p></div></div>", "Nested"),
        ("<p>Unclosed <b>bold", "Unclosed bold"),
        ("a < b and c > d", "a < b and c > d"),
        ("<img src='x.jpg' alt='photo'>", ""),
        ("", ""),
    ],
)  # fmt: skip
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
