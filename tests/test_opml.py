"""monitor.feeds.opml: reading real-world OPML exports and writing OPML 2.0."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from monitor.errors import MonitorError
from monitor.feeds.opml import OpmlError, OpmlFeed, export_opml, parse_opml

OPML = Path(__file__).parent / "data" / "opml"
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
WORLD, EUROPE, ASIA, TECH = "World", "Europe", "Asia", "Tech & Science"

# tests/data/opml/subscriptions.opml as it should read, written by hand from the file.
SUBSCRIPTIONS = [
    OpmlFeed("https://feeds.bbci.co.uk/news/world/rss.xml", "BBC News - World", "https://www.bbc.co.uk/news/world", (WORLD, "Wires")),
    OpmlFeed("https://www.lemonde.fr/international/rss_full.xml", "Le Monde – International", "https://www.lemonde.fr/international/", (WORLD, EUROPE)),
    OpmlFeed("https://rss.sueddeutsche.de/rss/Politik", "Süddeutsche Zeitung – Politik", "https://www.sueddeutsche.de/politik", (WORLD, EUROPE)),
    OpmlFeed("https://kyivindependent.example/feed/atom", "The Kyiv Independent", "https://kyivindependent.example/", (WORLD, EUROPE, "Ukraine")),
    OpmlFeed("https://www3.nhk.or.jp/rss/news/cat0.xml", "NHK WORLD-JAPAN News", "https://www3.nhk.or.jp/nhkworld/", (WORLD, ASIA)),
    OpmlFeed("https://www.scmp.com/rss/4/feed", "南华早报 · China", "https://www.scmp.com/news/china", (WORLD, ASIA)),
    OpmlFeed("https://novayagazeta.example.eu/feed/rss", "Новая газета Европа", None, (WORLD, ASIA, "Россия")),
    OpmlFeed("https://feeds.arstechnica.com/arstechnica/index", "Ars Technica & Friends", "https://arstechnica.com", (TECH,)),
    OpmlFeed("https://hnrss.org/frontpage", "Hacker News: Front Page", "https://news.ycombinator.com/", (TECH,)),
    OpmlFeed("https://www.theverge.com/rss/index.xml", "The Verge", None, (TECH,)),
    OpmlFeed("https://www.quantamagazine.org/feed/", "Quanta Magazine", None, (TECH, "Science", "Physics", "longform")),
    OpmlFeed("https://feeds.example.com/untitled.xml", None, None, (TECH,)),
    OpmlFeed("https://www.reutersagency.example/feed/?best-topics=world", "Reuters: World News", "https://www.reuters.com/world/", ()),
    OpmlFeed("https://apnews.example.com/apf-topnews?format=rss&lang=en", "AP Top News", "https://apnews.com/", ("Wires",)),
    OpmlFeed("https://podcast.example.org/episodes.xml", None, None, ()),
]  # fmt: skip


def opml(body: str, *, head: str = "<head><title>t</title></head>") -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">{head}<body>{body}</body></opml>'.encode()


def test_a_realistic_export_reads_with_folders_as_tags_and_odd_attributes_tolerated():
    assert parse_opml((OPML / "subscriptions.opml").read_bytes()) == SUBSCRIPTIONS


def test_round_trip_keeps_every_feed_title_link_and_tag():
    original = parse_opml((OPML / "subscriptions.opml").read_bytes())
    exported = export_opml(original, "news-monitor feeds", NOW)
    assert parse_opml(exported) == original
    # And the export of an export is byte for byte the same: nothing drifts.
    assert export_opml(parse_opml(exported), "news-monitor feeds", NOW) == exported


def test_export_is_opml_2_with_one_folder_per_first_tag_and_the_rest_as_category():
    feeds = [
        OpmlFeed("https://a.example/rss", "A", "https://a.example/", ("World", "Europe")),
        OpmlFeed("https://b.example/rss", None, None, ()),
        OpmlFeed("https://c.example/atom", "C <&> \"quoted\"", None, ("World",)),
    ]
    root = ET.fromstring(export_opml(feeds, "Desk feeds", NOW))
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.findtext("head/title") == "Desk feeds"
    assert parsedate_to_datetime(root.findtext("head/dateCreated") or "") == NOW
    assert root.findtext("head/dateCreated") == "Mon, 04 May 2026 09:30:00 GMT"
    body = root.find("body")
    assert body is not None
    [world, untitled] = body
    assert (world.get("text"), world.get("xmlUrl")) == ("World", None)
    first, third = world
    assert first.attrib == {
        "type": "rss", "text": "A", "title": "A", "xmlUrl": "https://a.example/rss",
        "htmlUrl": "https://a.example/", "category": "Europe",
    }  # fmt: skip
    assert third.get("title") == 'C <&> "quoted"'
    # OPML requires text; a feed without a title shows its URL and has no title attribute.
    assert untitled.attrib == {"type": "rss", "text": "https://b.example/rss", "xmlUrl": "https://b.example/rss"}


def test_export_writes_dates_in_gmt_whatever_the_clock_zone():
    paris = datetime(2026, 5, 4, 11, 30, tzinfo=timezone(timedelta(hours=2)))
    root = ET.fromstring(export_opml([], "t", paris))
    assert root.findtext("head/dateCreated") == "Mon, 04 May 2026 09:30:00 GMT"


@pytest.mark.parametrize(
    "tags",
    [
        ("Arts, Culture", "Reviews"),  # a comma in the folder name
        ("News", "Science/Tech"),  # a slash in a later tag: nested folder
        ("News", "Opinion, Letters", "Daily"),
        ("", "World"),  # a blank tag is dropped, not turned into a nameless folder
    ],
)
def test_tags_that_category_cannot_carry_still_round_trip(tags):
    feed = OpmlFeed("https://x.example/rss", "X", None, tags)
    [back] = parse_opml(export_opml([feed], "t", NOW))
    assert back.tags == tuple(tag for tag in tags if tag)


@pytest.mark.parametrize(
    ("outline", "expected"),
    [
        ('<outline xmlUrl="https://a.example/rss" text="A"/>', OpmlFeed("https://a.example/rss", "A")),
        ('<outline XMLURL="https://a.example/rss" TITLE="A"/>', OpmlFeed("https://a.example/rss", "A")),
        ('<outline url="https://a.example/rss" text="A" type="atom"/>', OpmlFeed("https://a.example/rss", "A")),
        ('<outline type="include" url="https://a.example/more.opml" text="More"/>', None),
        ('<outline xmlUrl="https://a.example/rss" text="A" category="/Boston/Weather,/Politics,tag"/>',
         OpmlFeed("https://a.example/rss", "A", tags=("Boston", "Weather", "Politics", "tag"))),
        ('<outline text="News"><outline text="news"><outline xmlUrl="https://a.example/rss" category="NEWS"/></outline></outline>',
         OpmlFeed("https://a.example/rss", tags=("News",))),
        ('<outline xmlUrl="https://a.example/rss" text="Tom &amp;amp; Jerry&#39;s"/>', OpmlFeed("https://a.example/rss", "Tom & Jerry's")),
    ],
)  # fmt: skip
def test_outline_variants(outline, expected):
    assert parse_opml(opml(outline)) == ([expected] if expected else [])


def test_a_feed_listed_twice_keeps_its_first_title_and_gains_the_other_tags():
    feeds = parse_opml(
        opml(
            '<outline text="A"><outline xmlUrl="https://x.example/rss" text="First"/></outline>'
            '<outline text="B"><outline xmlUrl="https://x.example/rss" text="Second" htmlUrl="https://x.example/"/></outline>'
        )
    )
    assert feeds == [OpmlFeed("https://x.example/rss", "First", None, ("A", "B"))]


def test_a_document_without_a_body_has_no_feeds():
    assert parse_opml(b'<opml version="2.0"><head/></opml>') == []


def test_a_declared_encoding_expat_does_not_know_is_decoded():
    data = '<?xml version="1.0" encoding="windows-1252"?><opml><body><outline xmlUrl="https://a.example/" text="Café – Zeitung"/></body></opml>'
    [feed] = parse_opml(data.encode("cp1252"))
    assert feed.title == "Café – Zeitung"


def test_utf16_with_a_bom_reads():
    data = '<?xml version="1.0" encoding="UTF-16"?><opml><body><outline xmlUrl="https://a.example/" text="Αθήνα"/></body></opml>'
    assert parse_opml(data.encode("utf-16"))[0].title == "Αθήνα"


@pytest.mark.parametrize(
    ("data", "line", "words"),
    [
        (b'<?xml version="1.0"?>\n<opml>\n<body>\n<outline text="a">\n</body></opml>', 5, "mismatched tag"),
        (b'<opml><body>\n\n<outline text="Caf&eacute;" xmlUrl="https://a.example/"/></body></opml>', 3, "undefined entity"),
        (b"", 1, "no element found"),
        (b'<?xml version="1.0" encoding="no-such-charset"?><opml/>', 1, "no-such-charset"),
    ],
)
def test_broken_xml_says_where(data, line, words):
    with pytest.raises(OpmlError) as caught:
        parse_opml(data)
    assert caught.value.line == line
    assert words in str(caught.value) and str(caught.value).startswith(f"line {line}")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, MonitorError)


def test_not_an_opml_file_is_refused_with_what_it_is():
    with pytest.raises(OpmlError, match=r"<rss>"):
        parse_opml(b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>')


def test_entity_expansion_is_refused_before_it_starts():
    bomb = (
        b'<?xml version="1.0"?>\n<!DOCTYPE opml [\n<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">\n'
        + b"".join(f'<!ENTITY {c} "{("&" + p + ";") * 20}">\n'.encode() for p, c in zip("abcdefgh", "bcdefghi"))
        + b']>\n<opml><body><outline text="&i;" xmlUrl="https://a.example/"/></body></opml>'
    )
    started = time.monotonic()
    with pytest.raises(OpmlError, match="entity") as caught:
        parse_opml(bomb)
    assert caught.value.line == 3
    assert time.monotonic() - started < 5


def test_an_external_entity_is_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not leak")
    data = f'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file://{secret}">]><opml><body><outline text="&x;" xmlUrl="https://a.example/"/></body></opml>'
    with pytest.raises(OpmlError, match="entity"):
        parse_opml(data.encode())
