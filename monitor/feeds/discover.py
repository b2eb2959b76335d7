"""Finding the feed behind a web page.

``feeds add URL`` calls :func:`find_feed`, which fetches URL once: when
:func:`looks_like_feed` says the body is a feed it is subscribed to as is,
otherwise :func:`feed_links` lists the feeds the page advertises through
``<link rel="alternate">``, best first, and the first one is fetched. Only
:func:`find_feed` does I/O; the rest is pure (page text in, feed URLs out), and
``feeds/parse.py`` uses :func:`feed_links` to say where the feed behind a page
it was given is.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING
from urllib.parse import urldefrag, urljoin, urlsplit

from monitor.errors import FeedError, FeedUrlError
from monitor.feeds.clean import cut
from monitor.feeds.urls import check_feed_url
from monitor.http_headers import charset, media_type

if TYPE_CHECKING:
    import httpx

    from monitor.feeds.addresses import PrivateAccess
    from monitor.items import Item

__all__ = ["DiscoveredFeed", "FeedLink", "FeedNamer", "feed_links", "find_feed", "looks_like_feed", "suggest_name"]

# Lower rank first. RSS (RDF is RSS 1.0) and Atom are equal: among them the
# page's own order (its main feed before its comments feed) is the better guide.
_FEED_TYPES = {
    "application/rss+xml": 0,
    "application/atom+xml": 0,
    "application/rdf+xml": 0,
    "application/feed+json": 1,
    "application/json": 2,
}
_FEED_CONTENT_TYPES = frozenset({"application/rss+xml", "application/atom+xml", "application/feed+json"})
_XML_ROOTS = frozenset({"rss", "feed", "rdf:rdf"})
# How much of a body is enough to see its root element.
_SNIFF_BYTES = 4096
# Prolog tokens that may come before the root element of an XML document.
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE(?:[^\[>]|\[.*?\])*>)", re.S | re.I)
_ROOT = re.compile(r"\s*<([A-Za-z_][\w.:-]*)")
_JSON_FEED_VERSION = re.compile(r"^https?://jsonfeed\.org/version/")


@dataclass(frozen=True)
class FeedLink:
    """A feed a page advertises with ``<link rel="alternate">``."""

    url: str
    title: str | None
    type: str  # the declared MIME type, lower case, without parameters


@dataclass(frozen=True)
class DiscoveredFeed:
    """The feed :func:`find_feed` found: its final URL, its own title, and its items now."""

    url: str
    title: str | None
    items: list[Item]


async def find_feed(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, private: PrivateAccess | None = None
) -> DiscoveredFeed:
    """The feed at ``url``, or the first (best) one the page at ``url`` links to.

    ``private`` says which hosts may be at a non-public address (default: none).
    Raises a FeedError when the retrieval fails (FetchError), when the page is
    neither a feed nor links to one, or when the feed does not parse (ParseError);
    whatever else goes wrong is a FeedError too, one line naming ``url``.
    """
    try:
        return await _find_feed(client, url, max_bytes=max_bytes, private=private)
    except FeedError:
        raise
    except Exception as exc:  # anything else a hostile server or document provokes is still this feed's failure
        raise FeedError(f"{url}: cannot be read as a feed: {cut(repr(exc), 300)}") from exc


async def _find_feed(
    client: httpx.AsyncClient, url: str, *, max_bytes: int, private: PrivateAccess | None
) -> DiscoveredFeed:
    # Imported here: feeds/parse.py imports this module for feed_links.
    from monitor.feeds.addresses import PUBLIC_ONLY
    from monitor.feeds.fetch import fetch
    from monitor.feeds.parse import parse_feed

    private = private or PUBLIC_ONLY
    fetched = await fetch(client, url, max_bytes=max_bytes, private=private)
    content = fetched.content or b""
    if not looks_like_feed(content, fetched.content_type):
        page = content.decode(charset(fetched.content_type) or "utf-8", "replace")
        links = feed_links(page, fetched.url)
        if not links:
            raise FeedError(f"{url}: neither a feed nor a page that links to one (<link rel=\"alternate\">)")
        fetched = await fetch(client, links[0].url, max_bytes=max_bytes, private=private)
        content = fetched.content or b""
    parsed = parse_feed(content, url=fetched.url, content_type=fetched.content_type)
    return DiscoveredFeed(fetched.url, parsed.title, parsed.items)


def feed_links(html: str, base_url: str) -> list[FeedLink]:
    """The feeds ``html`` (fetched from ``base_url``) links to, best first, each once."""
    page = _LinkCollector()
    try:
        page.feed(html)
        page.close()
    except AssertionError:  # html.parser's reaction to some broken markup: keep what was read
        pass
    # <base href> sets the base for every relative URL in the page, including
    # the links before it; a relative <base> is itself relative to the page.
    base = urljoin(base_url, page.base_href) if page.base_href else base_url
    found: dict[str, FeedLink] = {}
    for attributes in page.links:
        feed = _feed_from_link(attributes, base)
        if feed is not None and feed.url not in found:
            found[feed.url] = feed
    # sorted() is stable: equal ranks keep the page's order.
    return sorted(found.values(), key=lambda feed: _FEED_TYPES[feed.type])


def looks_like_feed(content: bytes, content_type: str | None) -> bool:
    """Whether ``content`` is a feed (RSS, Atom, RDF or JSON Feed) rather than a page.

    The body decides: servers label feeds text/html and pages text/xml. The
    Content-Type counts only when the body's start shows neither XML nor JSON.
    """
    head = _decode_head(content[:_SNIFF_BYTES])
    stripped = head.lstrip()
    if stripped.startswith(("{", "[")):
        return _is_json_feed(content)
    position = 0
    while prolog := _PROLOG.match(head, position):
        position = prolog.end()
    root = _ROOT.match(head, position)
    if root is not None:
        return root.group(1).lower() in _XML_ROOTS
    return media_type(content_type) in _FEED_CONTENT_TYPES


def suggest_name(title: str | None, url: str, taken: Collection[str] = ()) -> str:
    """A short config name for a new feed: a slug of its title, else of its host.

    ``-2``, ``-3``... are appended until the name is not in ``taken``.
    """
    return FeedNamer(taken).name(title, url)


class FeedNamer:
    """Names for many new feeds (an OPML import), as :func:`suggest_name` gives them, none twice.

    Each base name remembers the last number it used, so naming N feeds of one
    host costs N steps, not N squared.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken = set(taken)
        self._next: dict[str, int] = {}

    def name(self, title: str | None, url: str) -> str:
        """A name for the feed, taken from now on."""
        base = _slug(title or "") or _slug(urlsplit(url).hostname or "") or "feed"
        number = self._next.get(base, 1)
        name = base if number == 1 else f"{base}-{number}"
        while name in self._taken:
            number += 1
            name = f"{base}-{number}"
        self._next[base] = number + 1
        self._taken.add(name)
        return name


class _LinkCollector(HTMLParser):
    """Collects the attributes of every ``<link>`` and the first ``<base href>``.

    ``<link>`` elements are taken wherever they are: CMS plugins and broken
    templates put some after ``<body>`` starts, and a ``<link>`` is never content.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[dict[str, str]] = []
        self.base_href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("link", "base"):
            return
        # html.parser lower-cases names; the first of repeated attributes counts.
        attributes: dict[str, str] = {}
        for name, value in attrs:
            attributes.setdefault(name, value or "")
        if tag == "link":
            self.links.append(attributes)
        elif self.base_href is None and attributes.get("href", "").strip():
            self.base_href = attributes["href"].strip()


def _feed_from_link(attributes: dict[str, str], base: str) -> FeedLink | None:
    rel = attributes.get("rel", "").lower().split()
    kind = media_type(attributes.get("type"))
    href = attributes.get("href", "").strip()
    if "alternate" not in rel or kind is None or kind not in _FEED_TYPES or not href:
        return None
    try:
        # The rule every feed URL meets, wherever it comes from (feeds/urls.py).
        url = check_feed_url(urldefrag(urljoin(base, href)).url)
    except (FeedUrlError, ValueError):
        return None
    # WordPress marks its REST API view of every page as an application/json
    # alternate; it is a JSON document about the page, not a feed.
    if kind == "application/json" and "/wp-json/" in url:
        return None
    title = " ".join(attributes.get("title", "").split()) or None
    return FeedLink(url, title, kind)


def _decode_head(head: bytes) -> str:
    """The start of a body as text, good enough to read tag names."""
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if head.startswith(bom):
            return head[len(bom) :].decode(encoding, errors="ignore")
    # UTF-16 without a BOM still shows its NUL bytes next to the ASCII '<'.
    if head[:2] == b"\x00<":
        return head.decode("utf-16-be", errors="ignore")
    if head[:2] == b"<\x00":
        return head.decode("utf-16-le", errors="ignore")
    # Tag names are ASCII, and Latin-1 maps every byte to one character.
    return head.decode("latin-1")


def _is_json_feed(content: bytes) -> bool:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return False
    version = document.get("version") if isinstance(document, dict) else None
    return isinstance(version, str) and _JSON_FEED_VERSION.match(version) is not None


def _slug(text: str) -> str:
    """``Le Monde – International`` -> ``le-monde-international``, at most 40 characters."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = re.findall(r"[a-z0-9]+", folded.removeprefix("www."))
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > 40:
            break
        slug = candidate
    return slug or (words[0][:40] if words else "")
