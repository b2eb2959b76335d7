"""monitor.feeds.discover: the feeds behind a page, and telling feeds from pages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import BACKFILL, rss
from feedserver import FeedServer

from monitor.errors import FeedError
from monitor.feeds.addresses import ANY_ADDRESS
from monitor.feeds.discover import DiscoveredFeed, FeedLink, feed_links, find_feed, looks_like_feed, suggest_name
from monitor.feeds.fetch import FetchError, new_client

FEEDS = Path(__file__).parent / "data" / "feeds"

RSS, ATOM, JSONFEED, JSON = "application/rss+xml", "application/atom+xml", "application/feed+json", "application/json"
RDF = "application/rdf+xml"

# The head of a WordPress 6 single post, as the default theme and Yoast emit it.
WORDPRESS_POST = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="UTF-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>Ceasefire talks resume in Doha &#8211; The Harbour Herald</title>
<meta name='robots' content='max-image-preview:large' />
<link rel='dns-prefetch' href='//stats.wp.com' />
<link rel="alternate" type="application/rss+xml" title="The Harbour Herald &raquo; Feed" href="https://harbourherald.example/feed/" />
<link rel="alternate" type="application/rss+xml" title="The Harbour Herald &raquo; Comments Feed" href="https://harbourherald.example/comments/feed/" />
<link rel="alternate" type="application/rss+xml" title="The Harbour Herald &raquo; Ceasefire talks resume in Doha Comments Feed" href="https://harbourherald.example/2026/05/04/ceasefire-talks-resume/feed/" />
<script>
window._wpemojiSettings = {"baseUrl":"https:\\/\\/s.w.org\\/images\\/core\\/emoji\\/15.0.3\\/72x72\\/"};
document.write('<link rel="alternate" type="application/rss+xml" href="/from-script.xml">');
</script>
<link rel='stylesheet' id='wp-block-library-css' href='https://harbourherald.example/wp-includes/css/dist/block-library/style.min.css?ver=6.5.3' media='all' />
<link rel="https://api.w.org/" href="https://harbourherald.example/wp-json/" />
<link rel="alternate" type="application/json" href="https://harbourherald.example/wp-json/wp/v2/posts/4182" />
<link rel="EditURI" type="application/rsd+xml" title="RSD" href="https://harbourherald.example/xmlrpc.php?rsd" />
<link rel="canonical" href="https://harbourherald.example/2026/05/04/ceasefire-talks-resume/" />
<link rel="alternate" type="application/json+oembed" href="https://harbourherald.example/wp-json/oembed/1.0/embed?url=https%3A%2F%2Fharbourherald.example%2F2026%2F05%2F04%2Fceasefire-talks-resume%2F" />
<link rel="alternate" type="text/xml+oembed" href="https://harbourherald.example/wp-json/oembed/1.0/embed?url=https%3A%2F%2Fharbourherald.example%2F2026%2F05%2F04%2Fceasefire-talks-resume%2F&#038;format=xml" />
<link rel="alternate" hreflang="fr" href="https://harbourherald.example/fr/2026/05/04/pourparlers/" />
</head>
<body class="post-template-default single single-post">
<!-- <link rel="alternate" type="application/rss+xml" href="/commented-out.xml"> -->
<p>Negotiators met again on Monday.</p>
</body>
</html>
"""

# A news site's section front: relative hrefs, a <base>, odd attribute case,
# several sections, Atom and JSON Feed beside RSS, one link repeated.
NEWS_SECTION = """<!doctype html>
<html lang="de">
<HEAD>
<LINK REL="Alternate" TYPE="Application/RSS+XML; charset=utf-8" TITLE="Politik – alle Artikel" HREF="rss/politik.xml">
<base href="/ressort/">
<link rel="alternate" type="application/feed+json" title="Politik (JSON Feed)" href="politik.json">
<link rel="alternate" type="application/atom+xml" title="Politik (Atom)" href="https://cdn.kurier.example/atom/politik.xml">
<link rel="alternate feed" type="application/rss+xml" title="Eilmeldungen" href="//kurier.example/rss/eil.xml#latest">
<link rel="alternate" type="application/rss+xml" title="Politik – alle Artikel (again)" href="/ressort/rss/politik.xml">
<link rel="alternate" type="application/rss+xml" href="javascript:void(0)">
<link rel="alternate" type="application/rss+xml" title="   ">
<link rel="alternate stylesheet" type="text/css" href="contrast.css" title="Hoher Kontrast">
<link rel="alternate" media="only screen and (max-width: 640px)" href="https://m.kurier.example/ressort/politik/">
</HEAD>
<body>
<link rel="alternate" type="application/rss+xml" title="Politik – Kommentare" href="rss/kommentare.xml">
<a rel="alternate" type="application/rss+xml" href="rss/not-a-link-element.xml">RSS</a>
</body>
</html>
"""


def test_wordpress_post_lists_site_feed_first_and_ignores_rest_api_and_oembed():
    assert feed_links(WORDPRESS_POST, "https://harbourherald.example/2026/05/04/ceasefire-talks-resume/") == [
        FeedLink("https://harbourherald.example/feed/", "The Harbour Herald » Feed", RSS),
        FeedLink("https://harbourherald.example/comments/feed/", "The Harbour Herald » Comments Feed", RSS),
        FeedLink(
            "https://harbourherald.example/2026/05/04/ceasefire-talks-resume/feed/",
            "The Harbour Herald » Ceasefire talks resume in Doha Comments Feed",
            RSS,
        ),
    ]


def test_news_section_resolves_against_base_href_ranks_json_last_and_dedupes():
    assert feed_links(NEWS_SECTION, "https://kurier.example/ressort/politik/?page=2") == [
        FeedLink("https://kurier.example/ressort/rss/politik.xml", "Politik – alle Artikel", RSS),
        FeedLink("https://cdn.kurier.example/atom/politik.xml", "Politik (Atom)", ATOM),
        FeedLink("https://kurier.example/rss/eil.xml", "Eilmeldungen", RSS),
        FeedLink("https://kurier.example/ressort/rss/kommentare.xml", "Politik – Kommentare", RSS),
        FeedLink("https://kurier.example/ressort/politik.json", "Politik (JSON Feed)", JSONFEED),
    ]


@pytest.mark.parametrize(
    ("html", "base_url", "expected"),
    [
        # Without <base>, relative hrefs resolve against the page's own URL.
        ('<link rel=alternate type=application/atom+xml href="../atom.xml">', "https://b.example/news/world/",
         [FeedLink("https://b.example/news/atom.xml", None, ATOM)]),
        # A plain application/json alternate may be a JSON Feed; it comes after everything else.
        ('<link rel="alternate" type="application/json" href="/feed.json" title="JSON">'
         '<link rel="alternate" type="application/feed+json" href="/feed2.json">',
         "https://b.example/",
         [FeedLink("https://b.example/feed2.json", None, JSONFEED), FeedLink("https://b.example/feed.json", "JSON", JSON)]),
        # Only the first <base href> counts; a <base> without href does not.
        ('<base target="_blank"><base href="https://cdn.example/a/"><base href="https://other.example/">'
         '<link rel="alternate" type="application/rss+xml" href="rss">',
         "https://b.example/", [FeedLink("https://cdn.example/a/rss", None, RSS)]),
        ("<html><head><title>No feeds here</title></head><body></body></html>", "https://b.example/", []),
        ("", "https://b.example/", []),
        # A page cut off mid-tag (a size limit) keeps the links before the cut.
        ("<link rel='alternate' type='application/rss+xml' href='/rss'><link rel='alternate' type='appl", "https://b.example/",
         [FeedLink("https://b.example/rss", None, RSS)]),
        # RSS 1.0 is RDF: as good as RSS and Atom, in the page's order.
        ('<link rel="alternate" type="application/rdf+xml" href="/index.rdf"><link rel="alternate" type="application/atom+xml" href="/atom">',
         "https://b.example/", [FeedLink("https://b.example/index.rdf", None, RDF), FeedLink("https://b.example/atom", None, ATOM)]),
        # Markup that makes html.parser give up (an AssertionError) keeps the links before it.
        ('<link rel="alternate" type="application/rss+xml" href="/a"><![foo[ x ]]><link rel="alternate" type="application/rss+xml" href="/b">',
         "https://b.example/", [FeedLink("https://b.example/a", None, RSS)]),
    ],
)  # fmt: skip
def test_feed_links_cases(html, base_url, expected):
    assert feed_links(html, base_url) == expected


@pytest.mark.parametrize(
    ("fixture", "content_type"),
    [
        ("rss20.xml", "text/html; charset=utf-8"),  # a feed labelled as a page is still a feed
        ("rss091.xml", None),
        ("rss10.rdf", "application/rdf+xml"),
        ("atom10.xml", "application/atom+xml"),
        ("atom03.xml", "text/xml"),
        ("jsonfeed10.json", "application/json"),
        ("jsonfeed11.json", None),
        ("utf8-bom.xml", "application/xml"),
        ("utf-16.xml", "application/xml"),
        ("windows-1251.xml", None),
    ],
)
def test_real_feeds_look_like_feeds(fixture, content_type):
    assert looks_like_feed((FEEDS / fixture).read_bytes(), content_type)


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (WORDPRESS_POST.encode(), "text/html; charset=UTF-8", False),
        (NEWS_SECTION.encode(), "application/rss+xml", False),  # a page labelled as a feed is a page
        ((FEEDS / "html-page.html").read_bytes(), "text/xml", False),
        (b'<?xml version="1.0"?>\n<?xml-stylesheet type="text/xsl" href="/rss.xsl"?>\n<!-- generated -->\n'
         b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
         b'<rss version="0.91"><channel/></rss>', None, True),
        (b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY x "y">]><feed xmlns="http://www.w3.org/2005/Atom"/>', None, True),
        (b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>', "application/xml", False),
        (json.dumps({"title": "x", "version": "https://jsonfeed.org/version/1.1", "items": []}).encode(), None, True),
        (json.dumps({"version": "2.0", "data": []}).encode(), "application/feed+json", False),
        (b'[{"version": "https://jsonfeed.org/version/1"}]', None, False),
        (b'{"version": "https://jsonfeed.org/version/1", "items": [', None, False),  # truncated
        (b"", "application/rss+xml", True),  # nothing to sniff: the label is all there is
        (b"Service Unavailable", "text/plain", False),
    ],
)  # fmt: skip
def test_looks_like_feed_sniffs_the_body(content, content_type, expected):
    assert looks_like_feed(content, content_type) is expected


@pytest.mark.parametrize(
    ("title", "url", "taken", "expected"),
    [
        ("The Harbour Herald » Feed", "https://harbourherald.example/feed/", (), "the-harbour-herald-feed"),
        ("Le Monde – International", "https://www.lemonde.fr/rss", (), "le-monde-international"),
        ("Süddeutsche Zeitung", "https://rss.sueddeutsche.de/", ("suddeutsche-zeitung",), "suddeutsche-zeitung-2"),
        ("南华早报", "https://www.scmp.com/rss/4/feed", (), "scmp-com"),
        (None, "https://feeds.bbci.co.uk/news/world/rss.xml", ("feeds-bbci-co-uk", "feeds-bbci-co-uk-2"), "feeds-bbci-co-uk-3"),
        ("A very long headline-ish title for a feed that never seems to end at all", "https://x.example/",
         (), "a-very-long-headline-ish-title-for-a"),
    ],
)  # fmt: skip
def test_suggest_name(title, url, taken, expected):
    assert suggest_name(title, url, taken) == expected


# --- find_feed: what ``feeds add`` runs ---------------------------------------------------


def find(url: str, max_bytes: int = 1 << 20) -> DiscoveredFeed:
    async def run() -> DiscoveredFeed:
        async with new_client(timeout=5) as client:
            return await find_feed(client, url, max_bytes=max_bytes, private=ANY_ADDRESS)

    return asyncio.run(run())


def test_find_feed_takes_a_feed_as_it_is(feed_server: FeedServer) -> None:
    feed_server.route("/wire.xml", rss(*BACKFILL, title="Example Wire"))
    found = find(feed_server.url("/wire.xml"))
    assert (found.url, found.title, len(found.items)) == (feed_server.url("/wire.xml"), "Example Wire", len(BACKFILL))


def test_find_feed_follows_the_best_link_of_a_page(feed_server: FeedServer) -> None:
    feed_server.route("/wire.xml", rss(*BACKFILL, title="Example Wire"))
    feed_server.route("/wire.json", b"{}", content_type="application/feed+json")
    page = (
        '<html><head><title>Пример</title><link rel="alternate" type="application/feed+json" href="/wire.json">'
        '<link rel="alternate" type="application/rss+xml" title="Все новости" href="/wire.xml"></head></html>'
    )
    feed_server.route("/", page.encode("windows-1251"), content_type="text/html; charset=windows-1251")
    found = find(feed_server.url("/"))
    assert (found.url, found.title, len(found.items)) == (feed_server.url("/wire.xml"), "Example Wire", len(BACKFILL))


@pytest.mark.parametrize("content_type", ["text/html; charset=zlib", "text/html; charset=no-such-codec", "text/html", None])
def test_find_feed_reads_a_page_whatever_charset_it_claims(feed_server: FeedServer, content_type: str | None) -> None:
    feed_server.route("/wire.xml", rss(*BACKFILL))
    page = b'<html><head><link rel="alternate" type="application/rss+xml" href="/wire.xml"></head></html>'
    feed_server.route("/", page, content_type=content_type)
    assert find(feed_server.url("/")).url == feed_server.url("/wire.xml")


def test_find_feed_says_when_a_page_links_to_no_feed(feed_server: FeedServer) -> None:
    feed_server.route("/", b"<html><head><title>Nothing</title></head></html>", content_type="text/html")
    with pytest.raises(FeedError, match="neither a feed nor a page that links to one"):
        find(feed_server.url("/"))


def test_find_feed_passes_retrieval_errors_on(feed_server: FeedServer) -> None:
    feed_server.route("/", b'<link rel="alternate" type="application/rss+xml" href="/gone.xml">', content_type="text/html")
    with pytest.raises(FetchError, match="HTTP 404"):
        find(feed_server.url("/"))
