"""Feed bytes made safe for the XML parser: decoded to UTF-8, every DOCTYPE and entity declaration removed.

The charset is settled here, in RFC 7303's order (byte-order mark or
signature, HTTP charset, XML declaration) with UTF-8 then a detected charset
as fallbacks, and a warning when the declared charset was wrong. Characters
XML forbids are dropped, then every DOCTYPE and entity declaration, wherever it
stands, so that no entity can expand (the "billion laughs" and quadratic
blowups) and no external entity is ever read. Scanning is linear whatever the
input holds. Pure: bytes in, bytes out.
"""

from __future__ import annotations

import codecs
import re

import charset_normalizer

from monitor.http_headers import parameter

__all__ = ["defuse"]

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


def defuse(content: bytes, content_type: str | None) -> tuple[bytes, str | None]:
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
    declared = [label for label in (_signature(content), _http_charset(content_type), _xml_encoding(content)) if label]
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
