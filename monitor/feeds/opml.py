"""OPML subscription lists in and out. Pure: bytes in, feeds out, and back.

Reading tolerates what real exports contain: attribute names in any case
(``xmlUrl``, ``xmlurl``), ``url`` instead of ``xmlUrl``, ``title`` without
``text``, missing or odd ``type``, titles escaped twice, folders nested to any
depth, the same feed listed in several folders. Folders and ``category``
attributes become tags.

The XML is parsed by expat directly, with entity declarations refused: an
OPML file needs none, and declared entities are how a small file expands to
gigabytes ("billion laughs"). External entities and DTDs are never fetched.
Reading is one pass over the document, without building a tree, and bounded:
at most MAX_OPML_BYTES, MAX_OUTLINES outlines, folders nested MAX_DEPTH deep.

Which of the feeds read may be added is :func:`plan_import`'s business: the
same URL rule as every other way a feed enters (``feeds/urls.py``), and names
made for the new feeds in one pass however many share a host.
"""

from __future__ import annotations

import codecs
import email.utils
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.parsers import expat

from monitor.errors import FeedUrlError, MonitorError
from monitor.feeds.discover import FeedNamer
from monitor.feeds.urls import check_feed_url
from monitor.items import FeedSpec

__all__ = [
    "MAX_DEPTH",
    "MAX_OPML_BYTES",
    "MAX_OUTLINES",
    "ImportPlan",
    "OpmlError",
    "OpmlFeed",
    "RefusedOutline",
    "export_opml",
    "parse_opml",
    "plan_import",
]

MAX_OPML_BYTES = 32 * 1024 * 1024
MAX_OUTLINES = 100_000  # outline elements of every kind, folders included
MAX_DEPTH = 100  # outlines within outlines

# Outline types that are not feeds even when they carry a url: a web page
# link, another OPML file to include, a podcast directory entry and so on.
_NOT_FEED_TYPES = frozenset({"link", "include", "redirect", "howto"})
# Encodings expat decodes itself; any other declared one is decoded by Python.
_EXPAT_ENCODINGS = frozenset(
    {"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"}
)
_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# Characters XML 1.0 cannot carry, even escaped.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class OpmlError(MonitorError, ValueError):
    """An OPML file that cannot be read; ``line`` and ``column`` are 1-based when known."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        self.message = message
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line and column else f"line {line}: " if line else ""
        super().__init__(f"{where}{message}")


@dataclass(frozen=True)
class OpmlFeed:
    """One subscription. ``tags`` are its folder path, then its categories.

    ``line`` and ``column`` (1-based, 0 when unknown) are where its outline
    starts in the file it was read from.
    """

    url: str
    title: str | None = None
    html_url: str | None = None
    tags: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class RefusedOutline:
    """An outline whose URL cannot be a feed, and why (the FeedUrlError's text)."""

    feed: OpmlFeed
    reason: str

    def __str__(self) -> str:
        title = f"outline {self.feed.title!r}" if self.feed.title else "outline"
        return f"{title}: {self.reason}; not imported"


@dataclass(frozen=True)
class ImportPlan:
    """What importing an OPML file does: feeds to add, how many are there already, outlines refused."""

    add: list[FeedSpec]
    present: int
    refused: list[RefusedOutline]


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order, each URL once.

    A feed listed again (in another folder, say) keeps its first place and
    title and gains the tags of its other places. URLs are as written: see
    :func:`plan_import` for which can be feeds.
    """
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(f"the file is {_mib(len(data))}; an OPML import reads at most {_mib(MAX_OPML_BYTES)}: split it")
    reader = _Reader()
    _parse_xml(data, reader)
    return reader.feeds()


def plan_import(feeds: Sequence[OpmlFeed], known: Iterable[tuple[str, str, bool]]) -> ImportPlan:
    """Which of ``feeds`` to add, given the feeds ``known`` as (name, url, active).

    A URL an active feed already has is counted as present; one only a removed
    feed has brings that feed back under its old name. A URL that cannot be a
    feed is refused with the reason. New feeds are named from their title, else
    their host, without taking a name any feed has or had.
    """
    owners: dict[str, tuple[str, bool]] = {}
    names: list[str] = []
    for name, url, active in known:
        names.append(name)
        if url not in owners or active:
            owners[url] = (name, active)
    namer = FeedNamer(names)
    add: list[FeedSpec] = []
    present = 0
    refused: list[RefusedOutline] = []
    seen: set[str] = set()
    for feed in feeds:
        try:
            url = check_feed_url(feed.url)
        except FeedUrlError as exc:
            refused.append(RefusedOutline(feed, str(exc)))
            continue
        owner = owners.get(url)
        if owner is not None and owner[1] or url in seen:
            present += 1
            continue
        seen.add(url)
        name = owner[0] if owner is not None else namer.name(feed.title, url)
        add.append(FeedSpec(name, url, tags=feed.tags))
    return ImportPlan(add, present, refused)


def export_opml(feeds: Sequence[OpmlFeed], title: str, now: datetime) -> bytes:
    """An OPML 2.0 document: one folder per first tag, other tags as ``category``.

    Most readers show a single level of folders and read ``category``, so this
    shape survives a trip through them. A tag that ``category`` cannot carry
    (it holds a comma or a slash, the separators there) becomes a nested
    folder instead, so that reading the export back yields the same tags.
    """
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _xml_text(title)
    created = email.utils.format_datetime(now.astimezone(UTC), usegmt=True)
    ET.SubElement(head, "dateCreated").text = created
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}
    for feed in feeds:
        path, categories = _placement(feed.tags)
        outline = ET.SubElement(_folder(folders, path), "outline", _feed_attributes(feed))
        if categories:
            outline.set("category", ",".join(_xml_text(tag) for tag in categories))
    ET.indent(root, space="  ")
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


# --- reading ----------------------------------------------------------------


class _Reader:
    """Feeds collected as expat reports elements, with no tree kept.

    Only outlines inside the first ``<body>`` of the ``<opml>`` root, through
    outlines only, are read: each open element has a frame, the folder path
    above it for those outlines, None for everything else.
    """

    def __init__(self) -> None:
        self.parser: expat.XMLParserType | None = None
        self._frames: list[tuple[str, ...] | None] = []
        self._body_seen = False
        self._outlines = 0
        self._depth = 0  # outlines open
        self._feeds: dict[str, OpmlFeed] = {}
        # Tags of each URL by their case-folded spelling: merging a repeat costs its own tags only.
        self._tags: dict[str, dict[str, str]] = {}

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = tag.lower()
        frames = self._frames
        if not frames:
            if name != "opml":
                raise self._error(f"not an OPML file: the document is <{tag}>, expected <opml>")
            frames.append(None)
            return
        parent = frames[-1]
        if len(frames) == 1 and name == "body" and not self._body_seen:
            self._body_seen = True
            frames.append(())
        elif parent is not None and name == "outline":
            frames.append(self._outline(parent, attrib))
        else:
            frames.append(None)

    def end(self, tag: str) -> None:
        if self._frames.pop() is not None and len(self._frames) > 1:
            self._depth -= 1

    def feeds(self) -> list[OpmlFeed]:
        return [
            OpmlFeed(feed.url, feed.title, feed.html_url, tuple(self._tags[url].values()), feed.line, feed.column)
            for url, feed in self._feeds.items()
        ]

    def _outline(self, path: tuple[str, ...], attrib: dict[str, str]) -> tuple[str, ...]:
        """The path for what the outline holds; a feed outline is recorded on the way."""
        self._outlines += 1
        self._depth += 1
        if self._outlines > MAX_OUTLINES:
            raise self._error(f"more than {MAX_OUTLINES:,} outlines; an OPML import reads at most that many: split it")
        if self._depth > MAX_DEPTH:
            raise self._error(f"outlines nested more than {MAX_DEPTH} deep")
        attributes = {name.lower(): value.strip() for name, value in attrib.items()}
        url = _feed_url(attributes)
        title = _title(attributes)
        if url is None:
            # A folder, or a link that is not a feed: its name tags what is inside.
            return (*path, title) if title else path
        tags = self._tags.setdefault(url, {})
        for tag in (*path, *_categories(attributes.get("category", ""))):
            tags.setdefault(tag.casefold(), tag)
        if url not in self._feeds:
            line, column = self._position()
            html_url = attributes.get("htmlurl") or None
            self._feeds[url] = OpmlFeed(url, title if title != url else None, html_url, (), line, column)
        # Some exports nest episodes or items under a feed: they tag nothing.
        return path

    def _position(self) -> tuple[int, int]:
        assert self.parser is not None
        return self.parser.CurrentLineNumber, self.parser.CurrentColumnNumber + 1

    def _error(self, message: str) -> OpmlError:
        return OpmlError(message, *self._position())


def _parse_xml(data: bytes, reader: _Reader) -> None:
    parser = expat.ParserCreate(_override_encoding(data))
    reader.parser = parser
    parser.buffer_text = True

    def refuse_entities(name: str, *_: object) -> None:
        raise OpmlError(
            f"the file declares the XML entity {name!r}; OPML needs none and they are refused for safety",
            parser.CurrentLineNumber,
            parser.CurrentColumnNumber + 1,
        )

    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = refuse_entities
    parser.UnparsedEntityDeclHandler = refuse_entities
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    try:
        parser.Parse(_as_expat_input(data), True)
    except expat.ExpatError as exc:
        message = expat.errors.messages[exc.code] if exc.code else str(exc)
        raise OpmlError(f"not well-formed XML: {message}", exc.lineno, exc.offset + 1) from None


def _override_encoding(data: bytes) -> str | None:
    """UTF-8 when the declared encoding is one expat cannot decode itself."""
    declared = _declared_encoding(data)
    return "UTF-8" if declared and declared not in _EXPAT_ENCODINGS else None


def _as_expat_input(data: bytes) -> bytes:
    """``data``, re-encoded as UTF-8 when expat cannot decode it (windows-1252, say)."""
    declared = _declared_encoding(data)
    if not declared or declared in _EXPAT_ENCODINGS:
        return data
    try:
        return data.decode(codecs.lookup(declared).name, errors="replace").encode("utf-8")
    except LookupError:
        raise OpmlError(f"unknown character encoding {declared!r} in the XML declaration", 1) from None


def _declared_encoding(data: bytes) -> str | None:
    match = _DECLARED_ENCODING.match(data.removeprefix(codecs.BOM_UTF8))
    return match.group(1).decode("ascii").lower() if match else None


def _feed_url(attributes: dict[str, str]) -> str | None:
    kind = attributes.get("type", "").lower()
    url = attributes.get("xmlurl") or (attributes.get("url") if kind not in _NOT_FEED_TYPES else None)
    return url or None


def _title(attributes: dict[str, str]) -> str | None:
    """``text``, else ``title``; unescaped once more for exports that escape twice."""
    text = attributes.get("text") or attributes.get("title") or ""
    return html.unescape(text).strip() or None


def _categories(value: str) -> list[str]:
    """OPML 2.0 ``category``: comma-separated, each a tag or a /slash/path of tags."""
    return [part.strip() for item in value.split(",") for part in item.split("/") if part.strip()]


# --- writing ----------------------------------------------------------------


def _placement(tags: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folder path, category tags) for a feed with ``tags``."""
    # A blank tag would make a nameless folder, which reads back as no tag.
    tags = tuple(tag for tag in tags if tag.strip())
    if not tags:
        return (), ()
    if any("," in tag or "/" in tag for tag in tags[1:]):
        return tags, ()
    return tags[:1], tags[1:]


def _folder(folders: dict[tuple[str, ...], ET.Element], path: tuple[str, ...]) -> ET.Element:
    """The folder outline for ``path``, created (with its parents) on first use."""
    if path not in folders:
        name = _xml_text(path[-1])
        folders[path] = ET.SubElement(_folder(folders, path[:-1]), "outline", {"text": name, "title": name})
    return folders[path]


def _feed_attributes(feed: OpmlFeed) -> dict[str, str]:
    text = _xml_text(feed.title or feed.url)
    attributes = {"type": "rss", "text": text}
    if feed.title:
        attributes["title"] = text
    attributes["xmlUrl"] = _xml_text(feed.url)
    if feed.html_url:
        attributes["htmlUrl"] = _xml_text(feed.html_url)
    return attributes


def _xml_text(value: str) -> str:
    return _NOT_XML_CHARS.sub("", value)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f}".removesuffix(".0") + " MiB"
