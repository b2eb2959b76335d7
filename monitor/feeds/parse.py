"""Feed bytes -> items: RSS 0.9x/1.0/2.0 and Atom through feedparser, JSON Feed through json.

Nothing here does I/O: feedparser only ever gets bytes in a BytesIO (a bare
``bytes`` argument can be taken for a file name), and every DOCTYPE and entity
declaration is removed before it looks, wherever it stands, which disarms
entity-expansion bombs and external entities. Every body is reduced to plain
text with :func:`html_to_text` (linear in the markup), which is what rule
matching and entity extraction read; every item is then cleaned and bounded.
"""

from __future__ import annotations

import codecs
import email.utils
import io
import json
import re
import time
import xml.sax
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import urljoin, urlsplit

import charset_normalizer
import feedparser

from monitor.errors import ParseError
from monitor.feeds.clean import LINK_CHARS, MAX_TEXT_CHARS, clean_item, clean_line
from monitor.feeds.discover import feed_links
from monitor.http_headers import media_type, parameter
from monitor.items import Item

__all__ = ["ParsedFeed", "html_to_text", "parse_feed"]


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
    data, charset_warning = _defuse(content, content_type)
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
        title=_collapse_spaces(_detail_text(feed.get("title_detail"), feed.get("title"))) or None,
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
    title = _collapse_spaces(_detail_text(entry.get("title_detail"), entry.get("title")))
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
        published_at=_struct_time(entry.get("published_parsed"))
        or _struct_time(entry.get("updated_parsed")),
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
    return _collapse_lines(value)


def _entry_author(entry: Mapping[str, Any]) -> str | None:
    detail = entry.get("author_detail") or {}
    author = detail.get("name") or entry.get("author") or ""
    return _collapse_spaces(author) or None


def _struct_time(value: time.struct_time | None) -> datetime | None:
    """feedparser's parsed dates are UTC struct_times; leap seconds are clamped."""
    if value is None:
        return None
    try:
        return datetime(*value[:5], min(value[5], 59), tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _not_a_feed(
    result: Mapping[str, Any], data: bytes, url: str, content_type: str | None
) -> str | None:
    """Why a document without entries is not a feed, or None for an empty feed."""
    if not result.get("version") and _looks_like_html(data, content_type):
        return _html_page_message(data, url)
    exc = result.get("bozo_exception")
    if isinstance(exc, xml.sax.SAXException):
        return f"not a well-formed feed: {_bozo_message(result, data)}"
    if not result.get("version"):
        return "no RSS, Atom or JSON Feed found in the response"
    return None


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
        raise ParseError(
            f"{url}: invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise ParseError(f'{url}: JSON, but not a JSON Feed (no "items" list)')
    feed_authors = _json_authors(doc)
    items = [
        item
        for raw in doc["items"]
        if isinstance(raw, dict) and (item := _json_item(raw, url, feed_authors))
    ]
    return ParsedFeed(
        title=_collapse_spaces(_str(doc.get("title"))) or None,
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
    title = _collapse_spaces(_str(raw.get("title")))
    text = _longest(
        (
            html_to_text(_str(raw.get("content_html"))),
            _collapse_lines(_str(raw.get("content_text"))),
            _collapse_lines(_str(raw.get("summary"))),
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
        published_at=_iso_datetime(raw.get("date_published"))
        or _iso_datetime(raw.get("date_modified")),
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


# --- decoding and defusing ----------------------------------------------------

# Every DOCTYPE and every entity declaration, wherever it stands: in the
# prolog, after stray text, inside the root element or a CDATA section.
# feedparser's loose parser takes entities from declarations that expat
# refused, so "only the prolog" is not enough.
_DECLARATION = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.I)
# Inside a declaration, '>' ends it only outside quotes, comments and the [...]
# internal subset. Unterminated quotes/comments run to the end of the text, so
# scanning stays linear on hostile input.
_DOCTYPE_PART = re.compile(r"\"[^\"]*(?:\"|\Z)|'[^']*(?:'|\Z)|<!--.*?(?:-->|\Z)|[\[\]>]", re.S)
# Characters XML 1.0 forbids (C0 controls but tab, newline and carriage return;
# U+FFFE, U+FFFF). expat stops at the first one and hands the feed to the loose
# parser; removed, they can neither break a feed nor hide a declaration ("<!\0ENTITY").
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_XML_DECLARATION = re.compile(rb"<\?xml[\s?]")
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
# Byte-order marks, then the first bytes of "<?" or "<" in encodings that are
# not ASCII-compatible (XML 1.0 appendix F).
_SIGNATURES = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it shares the first two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # "<?xm" in EBCDIC
)
# UTF-32 and UTF-16 without a byte-order mark: the first "<", after any
# whitespace (XML 1.0 appendix F has none; publishers often start with a
# newline). Such a document is also valid UTF-8, with a NUL after each
# letter, in which no declaration could be recognised: it must be read right.
_WIDE_STARTS = (
    (re.compile(rb"(?:\x00\x00\x00[\t\n\r ])*\x00\x00\x00<"), "utf-32-be"),
    (re.compile(rb"(?:[\t\n\r ]\x00\x00\x00)*<\x00\x00\x00"), "utf-32-le"),
    (re.compile(rb"(?:\x00[\t\n\r ])*\x00<"), "utf-16-be"),
    (re.compile(rb"(?:[\t\n\r ]\x00)*<\x00"), "utf-16-le"),
)
# Labels whose superset decodes what publishers really send (as browsers do).
_SUPERSETS = {"iso8859-1": "cp1252", "gb2312": "gb18030"}


def _defuse(content: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """The document as UTF-8 without any DOCTYPE or entity declaration, and a warning about its charset.

    feedparser keeps "safe" internal entities, and one 40 KB entity used
    20,000 times expands to 800 MB (the "quadratic blowup"); a DOCTYPE can
    also declare external entities. Removing them from the decoded text, which
    is exactly what the XML parser will read (feedparser is told it is UTF-8),
    works whatever the encoding.
    """
    text, warning = _decode(content, content_type)
    text = _NOT_XML.sub("", text)
    if "<!" in text:
        text = _strip_declarations(text)
    return text.encode("utf-8"), warning


def _decode(content: bytes, content_type: str | None) -> tuple[str, str | None]:
    """Decode with the first charset that works: BOM, HTTP, XML declaration, UTF-8.

    That is RFC 7303's order, with UTF-8 then a detected charset as fallbacks
    for what publishers get wrong. Without them, a windows-1251 feed served
    with no charset would come out as windows-1252 mojibake.
    """
    declared = [
        label
        for label in (_signature(content), _http_charset(content_type), _xml_encoding(content))
        if label
    ]
    for label in dict.fromkeys((*declared, "utf-8")):
        try:
            text = content.decode(_codec(label))
        except (LookupError, UnicodeDecodeError):
            continue
        return text.lstrip("\ufeff"), _charset_warning(declared, label)
    best = charset_normalizer.from_bytes(content).best()
    if best is not None:
        return str(best).lstrip("\ufeff"), _charset_warning(declared, best.encoding)
    return content.decode("utf-8", errors="replace"), _charset_warning(declared, "utf-8")


def _signature(content: bytes) -> str | None:
    for prefix, encoding in _SIGNATURES:
        if content.startswith(prefix):
            return encoding
    head = content[:1024]
    for start, encoding in _WIDE_STARTS:
        if start.match(head):
            return encoding
    return None


def _xml_encoding(content: bytes) -> str | None:
    """The encoding the XML declaration names, when it can be true.

    A declaration readable as ASCII cannot be in UTF-16 or UTF-32, whatever
    it says (the byte-order mark or signature has already decided those).
    """
    match = _XML_ENCODING.match(content)
    if match is None:
        return None
    label = match.group(1).decode("ascii").lower()
    return None if label.startswith(("utf-16", "utf-32", "ucs")) else label


def _codec(label: str) -> str:
    name = codecs.lookup(label).name
    return _SUPERSETS.get(name, name)


def _charset_warning(declared: list[str], used: str) -> str | None:
    if not declared or declared[0] == used:
        return None
    return f"the document is declared as {declared[0]} but decodes as {used}"


def _strip_declarations(text: str) -> str:
    """``text`` with each DOCTYPE and entity declaration replaced by its newlines (keeps line numbers).

    A declaration on one line leaves a space, so that what stood on either
    side of it can never join into a new ``<!ENTITY``.
    """
    pieces: list[str] = []
    pos = 0
    while (found := _DECLARATION.search(text, pos)) is not None:
        end = _declaration_end(text, found.end())
        pieces.append(text[pos : found.start()])
        pieces.append("\n" * text.count("\n", found.start(), end) or " ")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces)


def _declaration_end(text: str, start: int) -> int:
    depth = 0
    for part in _DOCTYPE_PART.finditer(text, start):
        token = part.group()
        if token == "[":
            depth += 1
        elif token == "]":
            depth = max(0, depth - 1)
        elif token == ">" and depth == 0:
            return part.end()
    return len(text)


def _http_charset(content_type: str | None) -> str | None:
    """The charset label the Content-Type declares, as written (lower case).

    Not http_headers.charset(), which answers Python's codec name or None: the
    charset warning quotes what the server declared, unknown labels included.
    """
    label = parameter(content_type, "charset")
    return label.lower() if label else None


# --- HTML ----------------------------------------------------------------------

_HTML_START = re.compile(
    rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)\b", re.I | re.S
)


def _looks_like_html(data: bytes, content_type: str | None) -> bool:
    if media_type(content_type) in ("text/html", "application/xhtml+xml"):
        return True
    return _HTML_START.match(data[:4096]) is not None


def _html_page_message(data: bytes, url: str) -> str:
    links = feed_links(data.decode("utf-8"), url)
    if links:
        return f"looks like an HTML page, not a feed; the page links to a feed at {links[0].url}"
    return "looks like an HTML page, not a feed"


def html_to_text(html: str) -> str:
    """HTML reduced to readable plain text for matching.

    Scripts, styles and comments are dropped, block elements start new lines,
    entities are decoded, whitespace (including no-break spaces) collapses to
    one space, and soft hyphens and zero-width spaces, which would split
    words for matching, are removed.

    One pass over the markup, in time linear in its length whatever it holds:
    every token runs to its end or to the end of the text, so no position is
    read twice (html.parser reads the rest of the text again at each "<" of an
    unclosed tag, which is quadratic).
    """
    if "<" not in html and "&" not in html:
        return _collapse_lines(html)
    out: list[str] = []
    skipped = _Skipped()
    hidden = skipped.stack  # while not empty, text is not shown
    pos = 0
    search = _MARKUP.search
    while (token := search(html, pos)) is not None:
        start = token.start()
        if start > pos and not hidden:
            out.append(_text(html[pos:start]))
        pos = token.end()
        slash, name, close = token.group("slash", "name", "close")
        if name is None:  # a comment, a declaration, a processing instruction
            continue
        if not close:
            # A tag still open at the end of the text was not a tag: html.parser
            # keeps it as text, and so do we ("x <y" at the very end).
            if not hidden:
                out.append(_text(token.group()))
            continue
        name = name.lower()
        closing = slash == "/"
        if name in _BLOCKS:
            out.append("\n")
        elif name in _CELLS:
            out.append(" ")
        if closing:
            skipped.close(name)
        elif name in _RAW_TEXT:
            # Their content is not markup: skip to their end tag (or the end of the text).
            end = _RAW_TEXT[name].search(html, pos)
            pos = end.start() if end else len(html)
        elif name in _SKIPPED and not token.group().endswith("/>"):
            skipped.open(name)
    if pos < len(html) and not hidden:
        out.append(_text(html[pos:]))
    return _collapse_lines("".join(out))


_SKIPPED = frozenset({"noscript", "template"})
# Elements whose content is raw text up to their end tag (as html.parser reads them).
_RAW_TEXT = {name: re.compile(rf"</{name}(?=[\t\n\r\f />]|\Z)", re.I) for name in ("script", "style")}
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "dd", "details",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1",
        "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p",
        "pre", "section", "summary", "table", "tr", "ul",
    }
)  # fmt: skip
_CELLS = frozenset({"td", "th"})

# The markup of an HTML body, one token at a time. Each alternative either
# fails at once (a "<" that starts nothing stays text) or runs to its end or
# to the end of the text, and the quantifiers are possessive: no backtracking,
# so one pass is linear. In a tag, a quote opens a value only after "=".
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)"  # a comment
    r"|<!\[CDATA\[.*?(?:\]\]>|\Z)"  # a CDATA section (html.parser drops it too)
    r"|<[!?][^>]*+(?:>|\Z)"  # a declaration, a processing instruction
    r"|</(?![A-Za-z])[^>]*+(?:>|\Z)"  # "</" and no name: a bogus comment (html.parser ignores it)
    r"|<(?P<slash>/?)(?P<name>[A-Za-z][^\t\n\r\f />\x00]*+)"
    r"(?:[^>\"'=]++|=\s*+(?:\"[^\"]*+(?:\"|\Z)|'[^']*+(?:'|\Z))?|[\"'])*+"
    r"(?P<close>>|\Z)",
    re.S,
)


def _text(data: str) -> str:
    # Newlines in the source are formatting, not structure.
    return _SPACES.sub(" ", unescape(data) if "&" in data else data)


class _Skipped:
    """The open elements whose text is not shown (noscript, template), innermost last.

    An end tag closes its element and every unclosed one inside it, as
    html.parser's users do; counting names keeps each end tag O(1) amortised.
    """

    def __init__(self) -> None:
        self.stack: list[str] = []
        self._open: dict[str, int] = {}

    def open(self, name: str) -> None:
        self.stack.append(name)
        self._open[name] = self._open.get(name, 0) + 1

    def close(self, name: str) -> None:
        if not self._open.get(name):
            return
        while self.stack:
            inner = self.stack.pop()
            self._open[inner] -= 1
            if inner == name:
                return


# --- small helpers -------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u00ad\u200b\ufeff]")


def _collapse_spaces(text: str) -> str:
    # str.split() splits on exactly the characters \s matches, and faster.
    return " ".join(_INVISIBLE.sub("", text).split())


def _collapse_lines(text: str) -> str:
    """One space between words, one newline between non-empty lines."""
    lines = (" ".join(line.split()) for line in _INVISIBLE.sub("", text).splitlines())
    return "\n".join(line for line in lines if line)


def _longest(texts: Iterable[str]) -> str:
    return max(texts, key=len, default="")


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        cleaned = _collapse_spaces(value or "")
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
