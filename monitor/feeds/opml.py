"""OPML subscription lists in and out. Pure: bytes in, feeds out, and back.

Reading tolerates what real exports contain: attribute names in any case
(``xmlUrl``, ``xmlurl``), ``url`` instead of ``xmlUrl``, ``title`` without
``text``, missing or odd ``type``, titles escaped twice, folders nested to any
depth, the same feed listed in several folders. Folders and ``category``
attributes become tags.

The XML is parsed by expat directly, with entity declarations refused: an
OPML file needs none, and declared entities are how a small file expands to
gigabytes ("billion laughs"). External entities and DTDs are never fetched.
"""

from __future__ import annotations

import codecs
import email.utils
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.parsers import expat

from monitor.errors import MonitorError

__all__ = ["OpmlError", "OpmlFeed", "export_opml", "parse_opml"]

# Outline types that are not feeds even when they carry a url: a web page
# link, another OPML file to include, a podcast directory entry and so on.
_NOT_FEED_TYPES = frozenset({"link", "include", "redirect", "howto"})
# Encodings expat decodes itself; any other declared one is decoded by Python.
_EXPAT_ENCODINGS = frozenset({"utf-8", "utf8", "utf-16", "utf16", "iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"})
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
    """One subscription. ``tags`` are its folder path, then its categories."""

    url: str
    title: str | None = None
    html_url: str | None = None
    tags: tuple[str, ...] = ()


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """The feeds of an OPML document, in document order, each URL once.

    A feed listed again (in another folder, say) keeps its first place and
    title and gains the tags of its other places.
    """
    root = _parse_xml(data)
    if root.tag.lower() != "opml":
        raise OpmlError(f"not an OPML file: the document is <{root.tag}>, expected <opml>")
    body = next((child for child in root if child.tag.lower() == "body"), None)
    if body is None:
        return []
    feeds: dict[str, OpmlFeed] = {}
    for feed in _walk(body, ()):
        first = feeds.get(feed.url)
        if first is None:
            feeds[feed.url] = feed
        else:
            feeds[feed.url] = OpmlFeed(first.url, first.title, first.html_url, _unique((*first.tags, *feed.tags)))
    return list(feeds.values())


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


def _parse_xml(data: bytes) -> ET.Element:
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(_override_encoding(data))
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
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(_as_expat_input(data), True)
    except expat.ExpatError as exc:
        message = expat.errors.messages[exc.code] if exc.code else str(exc)
        raise OpmlError(f"not well-formed XML: {message}", exc.lineno, exc.offset + 1) from None
    return builder.close()


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


def _walk(parent: ET.Element, path: tuple[str, ...]) -> Iterator[OpmlFeed]:
    """Feeds under ``parent``; ``path`` is the names of the folders above it."""
    for outline in parent:
        if outline.tag.lower() != "outline":
            continue
        attributes = {name.lower(): value.strip() for name, value in outline.attrib.items()}
        url = _feed_url(attributes)
        name = _title(attributes)
        if url is None:
            # A folder, or a link that is not a feed: its name tags what is inside.
            yield from _walk(outline, path + ((name,) if name else ()))
            continue
        tags = _unique((*path, *_categories(attributes.get("category", ""))))
        yield OpmlFeed(url, name if name != url else None, attributes.get("htmlurl") or None, tags)
        # Some exports nest episodes or items under a feed: they tag nothing.
        yield from _walk(outline, path)


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


def _unique(tags: Sequence[str]) -> tuple[str, ...]:
    """``tags`` without repeats, ignoring case, first spelling kept."""
    seen: set[str] = set()
    kept = []
    for tag in tags:
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            kept.append(tag)
    return tuple(kept)


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
