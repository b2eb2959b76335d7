"""Feed bytes -> items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed through json.

Nothing here does I/O: feedparser only ever gets bytes in a BytesIO (a bare
``bytes`` argument can be taken for a file name), and only once
:func:`monitor.feeds.defuse.defuse` has decoded them and removed every DOCTYPE
and entity declaration, which disarms entity-expansion bombs and external
entities. Every body is reduced to plain text with
:func:`monitor.feeds.html_text.html_to_text` (linear in the markup), which is
what rule matching and entity extraction read; every item is then cleaned and
bounded.
"""

from __future__ import annotations

import email.utils
import io
import json
import re
import time
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser

from monitor.errors import ParseError
from monitor.feeds.clean import LINK_CHARS, MAX_TEXT_CHARS, clean_item, clean_line
from monitor.feeds.defuse import defuse
from monitor.feeds.discover import feed_links
from monitor.feeds.html_text import collapse_lines, collapse_spaces, html_to_text
from monitor.http_headers import media_type
from monitor.items import Item

__all__ = ["ParsedFeed", "parse_feed"]


@dataclass(frozen=True)
class ParsedFeed:
    """What a feed says about itself and its items.

    ``warning`` describes a problem the parser recovered from (a feed that is
    not well-formed but still yielded items, a wrong charset), else None.
    """

    title: str | None
    link: str | None
    items: list[Item]
    ttl_minutes: int | None = None
    warning: str | None = None
    hubs: tuple[str, ...] = ()  # WebSub hubs the document names (rel="hub"; JSON Feed "hubs")
    self_url: str | None = None  # the feed's own URL as it states it (rel="self"; JSON Feed "feed_url")


def parse_feed(
    content: bytes, *, url: str, content_type: str | None = None, max_text_chars: int = MAX_TEXT_CHARS
) -> ParsedFeed:
    """Parse a feed document retrieved from ``url`` (used to resolve relative links).

    ``content_type`` is the HTTP Content-Type; its charset is honoured. Every
    item comes out clean and bounded (:mod:`monitor.feeds.clean`), its text cut
    to ``max_text_chars``. Raises :class:`ParseError` when the bytes are not a
    feed, including a document too deep or too large to hold in memory.
    """
    if not content.strip():
        raise ParseError(f"{url}: the response is empty, not a feed")
    try:
        if _is_json(content, content_type):
            parsed = _parse_json_feed(content, url)
        else:
            parsed = _parse_xml_feed(content, url, content_type)
    except RecursionError:
        raise ParseError(f"{url}: the document is nested too deeply to be read") from None
    except MemoryError:
        raise ParseError(f"{url}: the document needs more memory than the parser may use") from None
    return replace(
        parsed,
        title=clean_line(parsed.title) or None,
        items=[clean_item(item, max_text_chars) for item in parsed.items],
        warning=clean_line(parsed.warning) or None,
    )


# --- RSS and Atom (feedparser) -------------------------------------------------

_UTF8_XML = "application/xml; charset=utf-8"


def _parse_xml_feed(content: bytes, url: str, content_type: str | None) -> ParsedFeed:
    data, charset_warning = defuse(content, content_type)
    result = feedparser.parse(
        io.BytesIO(data),
        # The charset is settled and the media type irrelevant (a feed served
        # as text/html is still a feed): feedparser only needs to know UTF-8.
        response_headers={"content-location": url, "content-type": _UTF8_XML},
        # Bodies are reduced to plain text (html_to_text drops scripts, styles
        # and every tag), so feedparser's HTML sanitising and the rewriting of
        # URIs inside HTML are work thrown away: skipping them halves the parse
        # time. Item links are still made absolute (_http_url).
        resolve_relative_uris=False,
        sanitize_html=False,
    )
    if not result.entries:
        problem = _not_a_feed(result, data, url, content_type)
        if problem:
            raise ParseError(f"{url}: {problem}")
    feed = result.feed
    return ParsedFeed(
        title=collapse_spaces(_detail_text(feed.get("title_detail"), feed.get("title"))) or None,
        link=_http_url(feed.get("link"), url),
        items=[item for entry in result.entries if (item := _entry_item(entry, url))],
        ttl_minutes=_positive_int(feed.get("ttl")),
        warning=_bozo_message(result, data) if result.bozo else charset_warning,
        hubs=_link_targets(feed.get("links"), "hub", url),
        self_url=next(iter(_link_targets(feed.get("links"), "self", url)), None),
    )


def _link_targets(links: object, rel: str, url: str) -> tuple[str, ...]:
    """The http(s) targets of the feed-level links (atom:link, also inside RSS) with relation ``rel``."""
    found = (
        _http_url(link.get("href"), url)
        for link in _list(links)[:64]
        if isinstance(link, dict) and link.get("rel") == rel
    )
    return tuple(dict.fromkeys(target for target in found if target))


def _entry_item(entry: Mapping[str, Any], url: str) -> Item | None:
    title = collapse_spaces(_detail_text(entry.get("title_detail"), entry.get("title")))
    text = _longest(_detail_text(d, d.get("value")) for d in _bodies(entry))
    link = _http_url(entry.get("link"), url)
    if not (title or text or link):
        return None
    return Item(
        guid=(entry.get("id") or "").strip() or None,
        link=link,
        title=title,
        text=text,
        author=_entry_author(entry),
        tags=_unique(tag.get("term") or tag.get("label") for tag in entry.get("tags") or ()),
        published_at=_struct_time(entry.get("published_parsed")) or _struct_time(entry.get("updated_parsed")),
    )


def _bodies(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    bodies = list(entry.get("content") or ())
    if entry.get("summary_detail"):
        bodies.append(entry["summary_detail"])
    return bodies


def _detail_text(detail: Mapping[str, Any] | None, value: str | None) -> str:
    """Plain text of a feedparser text construct (its ``type`` says if it is HTML)."""
    if not value:
        return ""
    kind = (detail or {}).get("type") or "text/html"
    if "html" in kind:
        return html_to_text(value)
    return collapse_lines(value)


def _entry_author(entry: Mapping[str, Any]) -> str | None:
    detail = entry.get("author_detail") or {}
    author = detail.get("name") or entry.get("author") or ""
    return collapse_spaces(author) or None


def _struct_time(value: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC struct_times; leap seconds are clamped."""
    if value is None:
        return None
    try:
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _not_a_feed(result: Mapping[str, Any], data: bytes, url: str, content_type: str | None) -> str | None:
    """Why a document without entries is not a feed, or None for an empty feed."""
    if not result.get("version") and _looks_like_html(data, content_type):
        return _html_page_message(data, url)
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXException):
        return f"not a well-formed feed: {_bozo_message(result, data)}"
    if not result.get("version"):
        return "no RSS, Atom or JSON Feed found in the response"
    return None


_XML_DECLARATION = re.compile(rb"<\?xml[\s?]")


def _bozo_message(result: Mapping[str, Any], data: bytes) -> str:
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXParseException):
        line = exc.getLineNumber() or 1
        # feedparser prepends an XML declaration line when the document has
        # none; report lines as the publisher's file numbers them.
        if not _XML_DECLARATION.match(data):
            line = max(1, line - 1)
        column = (exc.getColumnNumber() or 0) + 1  # expat counts from 0, editors from 1
        return f"{exc.getMessage()} at line {line}, column {column}"
    return str(exc) if exc else "the feed is not well-formed"


# --- JSON Feed -----------------------------------------------------------------

_JSON_TYPES = ("application/feed+json", "application/json")


def _is_json(content: bytes, content_type: str | None) -> bool:
    head = content[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return True
    if head.startswith(b"<"):
        return False
    return media_type(content_type) in _JSON_TYPES


def _parse_json_feed(content: bytes, url: str) -> ParsedFeed:
    try:
        text = content.decode(json.detect_encoding(content)).lstrip("\ufeff")
        doc = json.loads(text)
    except UnicodeDecodeError as exc:
        raise ParseError(f"{url}: invalid JSON: not UTF-8 ({exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"{url}: invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(f'{url}: JSON, but not a JSON Feed (no "items" list)')
    feed_authors = _json_authors(doc)
    items = [item for raw in doc["items"] if isinstance(raw, dict) and (item := _json_item(raw, url, feed_authors))]
    return ParsedFeed(
        title=collapse_spaces(_str(doc.get("title"))) or None,
        link=_http_url(_str(doc.get("home_page_url")), url),
        items=items,
        hubs=tuple(
            dict.fromkeys(
                target
                for hub in _list(doc.get("hubs"))[:64]
                if isinstance(hub, dict)
                and _str(hub.get("type")).lower() in ("websub", "pubsubhubbub")  # not rssCloud
                and (target := _http_url(_str(hub.get("url")), url))
            )
        ),
        self_url=_http_url(_str(doc.get("feed_url")), url),
    )


def _json_item(raw: Mapping[str, Any], url: str, feed_authors: str | None) -> Item | None:
    title = collapse_spaces(_str(raw.get("title")))
    text = _longest(
        (
            html_to_text(_str(raw.get("content_html"))),
            collapse_lines(_str(raw.get("content_text"))),
            collapse_lines(_str(raw.get("summary"))),
        )
    )
    link = _http_url(_str(raw.get("url")) or _str(raw.get("external_url")), url)
    if not (title or text or link):
        return None
    # JSON Feed 1.0 publishers sometimes use numbers; 1.1 says strings.
    guid = str(raw["id"]).strip() if raw.get("id") is not None else ""
    return Item(
        guid=guid or None,
        link=link,
        title=title,
        text=text,
        author=_json_authors(raw) or feed_authors,
        tags=_unique(tag for tag in _list(raw.get("tags")) if isinstance(tag, str)),
        published_at=_iso_datetime(raw.get("date_published")) or _iso_datetime(raw.get("date_modified")),
    )


def _json_authors(obj: Mapping[str, Any]) -> str | None:
    """``authors`` (1.1) or ``author`` (1.0) as one display string."""
    authors = _list(obj.get("authors")) or [obj.get("author")]
    # Some 1.0 feeds give a bare name instead of an author object.
    names = _unique(a.get("name") if isinstance(a, dict) else _str(a) for a in authors)
    return ", ".join(names) or None


def _iso_datetime(value: object) -> datetime | None:
    """An RFC 3339 date as JSON Feed requires, or the RFC 822 form some publishers use."""
    text = _str(value).strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    # RFC 3339 requires an offset; a missing one is read as UTC rather than local.
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


# --- an HTML page instead of a feed --------------------------------------------

_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S)


def _looks_like_html(data: bytes, content_type: str | None) -> bool:
    if media_type(content_type) in ("text/html", "application/xhtml+xml"):
        return True
    return _HTML_START.match(data[:4096]) is not None


def _html_page_message(data: bytes, url: str) -> str:
    links = feed_links(data.decode("utf-8"), url)
    if links:
        return f"looks like an HTML page, not a feed; the page links to a feed at {links[0].url}"
    return "looks like an HTML page, not a feed"


# --- small helpers -------------------------------------------------------------


def _longest(texts: Iterable[str]) -> str:
    return max(texts, key=len, default="")


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        cleaned = collapse_spaces(value or "")
        if cleaned:
            seen.setdefault(cleaned, None)
    return tuple(seen)


def _http_url(link: str | None, base: str) -> str | None:
    """``link`` made absolute against ``base``; None unless it is http(s).

    Alerts render links into HTML email and Slack, so javascript: or data:
    links from a feed are dropped rather than passed on.
    """
    if not link or not link.strip():
        return None
    if len(link) > LINK_CHARS:  # checked before urljoin, which would copy it
        return None
    absolute = urljoin(base, link.strip())
    if len(absolute) > LINK_CHARS or urlsplit(absolute).scheme.lower() not in ("http", "https"):
        return None
    return absolute


def _positive_int(value: object) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
