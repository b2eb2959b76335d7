"""Reading HTTP header values: Retry-After, HTTP-dates, Content-Type.

Pure: strings in, values out; no I/O and no clock reads (``now`` is passed in).
Header values come from servers we do not control, so every function answers
None for anything it cannot read rather than raising, and numbers are bounded
before they can overflow a ``timedelta`` or ``datetime``.
"""

from __future__ import annotations

import codecs
import email.utils
import re
from datetime import UTC, datetime

__all__ = ["MAX_DELTA_SECONDS", "charset", "http_date", "media_type", "parameter", "retry_after"]

# RFC 9111 5.2.1.1: delta-seconds beyond 2**31 mean "as long as you like". A
# longer Retry-After is read as this (about 68 years): timedelta and datetime
# overflow long before a hostile header's value would.
MAX_DELTA_SECONDS = 2**31

# ASCII digits only (RFC 9110 DIGIT): \d and str.isdigit() also take "١٢٠"
# and "²", which int() then reads or refuses. Fractions are not HTTP, but some
# receivers send them.
_DELTA_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# type "/" subtype, both RFC 9110 tokens.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def retry_after(value: str | None, now: datetime) -> float | None:
    """A Retry-After header (RFC 9110 10.2.3) as seconds to wait from ``now``; None if absent or unreadable.

    Delta-seconds ("120", "1.5") or an HTTP-date. The wait is never negative (a
    date in the past means "now") and at most :data:`MAX_DELTA_SECONDS`. For an
    HTTP-date, pass the response's own Date as ``now`` when there is one
    (``http_date(date) or <local now>``), so a skewed local clock does not
    distort the wait.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got naive {now.isoformat()}")
    if value is None or not value.strip():
        return None
    text = value.strip()
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)  # float, not int: no digit limit, a long string only becomes inf
    else:
        when = http_date(text)
        if when is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(0.0, seconds), float(MAX_DELTA_SECONDS))


def http_date(value: str | None) -> datetime | None:
    """An HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", also the obsolete forms) in UTC; None if unreadable.

    A date without a zone ("-0000", or the asctime form) is taken as UTC, as
    RFC 5322 and RFC 9110 say.
    """
    if value is None or not value.strip():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: year 9999 west of UTC
        return None


def media_type(content_type: str | None) -> str | None:
    """The type/subtype of a Content-Type, lower case, without parameters; None if absent or malformed.

    ``"Application/RSS+XML; charset=utf-8"`` -> ``"application/rss+xml"``.
    """
    kind = (content_type or "").split(";", 1)[0].strip()
    return kind.lower() if _MEDIA_TYPE.fullmatch(kind) else None


def parameter(content_type: str | None, name: str) -> str | None:
    """The value of parameter ``name`` (any case) of a Content-Type, unquoted, as written; None if absent or empty.

    The first occurrence counts. :func:`charset` is what most callers want;
    this is for those who report the label a server declared.
    """
    wanted = name.lower()
    for part in (content_type or "").split(";")[1:]:
        key, equals, value = part.partition("=")
        if equals and key.strip().lower() == wanted:
            return value.strip().strip("\"'").strip() or None
    return None


def charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type as Python's codec name ("ISO-8859-1" -> "iso8859-1").

    None when there is none, or when Python knows no text encoding by that
    name: a server may name anything, including codecs such as "zlib" or
    "rot13" that ``bytes.decode`` refuses.
    """
    label = parameter(content_type, "charset")
    if label is None:
        return None
    try:
        name = codecs.lookup(label).name
        "".encode(name)  # LookupError for codecs that are not text encodings
    except (LookupError, UnicodeError, ValueError):  # ValueError: a NUL in the label
        return None
    return name


LINK_MAX_CHARS = 16 * 1024  # of a Link header read; the rest is ignored
# <target> and its parameters. "[^<>]*" keeps the scan linear on a header made of "<" alone.
_LINK = re.compile(r'<([^<>]*)>((?:\s*;\s*[^;,"\s=]+\s*(?:=\s*(?:"[^"]*"|[^;,\s]*))?)*)')
_LINK_PARAM = re.compile(r';\s*([^;,"\s=]+)\s*(?:=\s*("[^"]*"|[^;,\s]*))?')


def links(value: str | None) -> list[tuple[str, tuple[str, ...]]]:
    """An RFC 8288 Link header as (target, relation types) pairs, in order, targets as written.

    ``<https://hub.example/>; rel="hub", </feed.xml>; rel=self`` ->
    ``[("https://hub.example/", ("hub",)), ("/feed.xml", ("self",))]``. Relation types are lower-case.
    """
    pairs = []
    for match in _LINK.finditer((value or "")[:LINK_MAX_CHARS]):
        rels: tuple[str, ...] = ()
        for param in _LINK_PARAM.finditer(match.group(2)):
            if param.group(1).lower() == "rel" and param.group(2):
                rels = tuple(param.group(2).strip('"').lower().split())
                break
        pairs.append((match.group(1).strip(), rels))
    return pairs
