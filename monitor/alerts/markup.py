"""PURE: feed text cut and made safe for a message.

Highlighted segments at a rule's hit offsets, an excerpt around the first hit,
a headline that fits any channel's header, links a reader may click, and
escaping for Markdown and for apprise's Slack conversion. The templates in
``templates/`` get these pieces from :mod:`monitor.alerts.render`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from monitor.display import shown

# How much of the body an alert quotes; enough for a sentence or two of context.
EXCERPT_CHARS = 280
ELLIPSIS = "…"

# A message title (an e-mail subject, a chat header) is cut to this many characters and UTF-8 bytes.
HEADLINE_CHARS = 200
HEADLINE_BYTES = 300

# Links from feeds are untrusted: only web links become clickable.
LINK_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True)
class Segment:
    """A run of text; ``hit`` runs are the words a rule matched."""

    text: str
    hit: bool = False


# ---------------------------------------------------------------- highlighting


def _valid_spans(text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans inside ``text``, sorted, overlaps merged; bad offsets are dropped, not fatal."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((s, e) for s, e in spans if 0 <= s < e <= len(text)):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, spans: Iterable[tuple[int, int]]) -> tuple[Segment, ...]:
    """``text`` cut into plain and hit segments at the character offsets ``spans``."""
    segments: list[Segment] = []
    position = 0
    for start, end in _valid_spans(text, spans):
        if start > position:
            segments.append(Segment(text[position:start]))
        segments.append(Segment(text[start:end], hit=True))
        position = end
    if position < len(text) or not segments:
        segments.append(Segment(text[position:]))
    return tuple(segments)


def collapse_whitespace(segments: Iterable[Segment]) -> tuple[Segment, ...]:
    # Per segment, after cutting, so collapsing never moves an offset.
    out = [Segment(re.sub(r"\s+", " ", s.text), s.hit) for s in segments]
    if out:
        out[0] = Segment(out[0].text.lstrip(), out[0].hit)
        out[-1] = Segment(out[-1].text.rstrip(), out[-1].hit)
    return tuple(s for s in out if s.text)


def _window(text: str, anchor: tuple[int, int] | None, width: int) -> tuple[int, int]:
    """A ``width``-character window of ``text`` showing ``anchor``, cut at whitespace."""
    if len(text) <= width:
        return 0, len(text)
    first = anchor[0] if anchor else 0
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    start = max(0, end - width)
    if start > 0:
        space = text.find(" ", start, first)
        start = space + 1 if space != -1 else start
    if end < len(text):
        floor = anchor[1] if anchor else start
        space = text.rfind(" ", floor, end)
        end = space if space != -1 else end
    return start, end


def excerpt(text: str, spans: Iterable[tuple[int, int]], width: int = EXCERPT_CHARS) -> tuple[Segment, ...]:
    """A short part of ``text`` around its first hit, highlighted, whitespace collapsed.

    A cut end is marked with an ellipsis segment.
    """
    valid = _valid_spans(text, spans)
    start, end = _window(text, valid[0] if valid else None, width)
    inside = [(max(s, start) - start, min(e, end) - start) for s, e in valid if s < end and e > start]
    segments = list(collapse_whitespace(highlight(text[start:end], inside)))
    if start > 0:
        segments.insert(0, Segment(ELLIPSIS))
    if end < len(text):
        segments.append(Segment(ELLIPSIS))
    return tuple(segments)


def safe_link(link: str | None) -> str | None:
    """``link`` if it is a web link a reader may click, else None (no javascript: etc.)."""
    if not link:
        return None
    try:
        scheme = urlsplit(link.strip()).scheme.lower()
    except ValueError:
        return None
    return link.strip() if scheme in LINK_SCHEMES else None


def one_line(text: str) -> str:
    """Whitespace collapsed to single spaces: subjects and headers are one line."""
    return " ".join(text.split())


def headline(text: str, chars: int = HEADLINE_CHARS, max_bytes: int = HEADLINE_BYTES) -> str:
    """A message title: one line without bidirectional controls, cut to fit any channel's header.

    Mail servers refuse a header line over 998 bytes, and apprise neither folds
    the subject nor bounds it: encoded, a non-ASCII character takes up to 12
    bytes ("=F0=9F=98=80"), so a 110-character Chinese headline was refused.
    :data:`HEADLINE_BYTES` of UTF-8 stay under that limit whatever the script.
    """
    text = shown(one_line(text))
    if len(text) <= chars and len(text.encode("utf-8")) <= max_bytes:
        return text
    room = max_bytes - len(ELLIPSIS.encode("utf-8"))
    end = 0
    for character in text[: max(0, chars - 1)]:
        room -= len(character.encode("utf-8"))
        if room < 0:
            break
        end += 1
    return text[:end].rstrip() + ELLIPSIS


# ------------------------------------------------------------- markup escaping

# Characters CommonMark could read as markup in feed text.
_MD_SPECIAL_RE = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")
# Apprise's CommonMark->Slack conversion keeps a backslash escape literally
# (Slack has no escapes), so for Slack only escape what would otherwise be
# markup or a mention: brackets (links) and angle brackets (<!channel>).
_SLACK_SPECIAL_RE = re.compile(r"([\[\]<>])")
_URL_UNSAFE = str.maketrans({" ": "%20", "(": "%28", ")": "%29", "<": "%3C", ">": "%3E", "|": "%7C"})


def md_escape(text: str) -> str:
    """Feed text made literal in CommonMark."""
    return _MD_SPECIAL_RE.sub(r"\\\1", text)


def slack_escape(text: str) -> str:
    """Feed text made literal after apprise's CommonMark to Slack conversion."""
    return _SLACK_SPECIAL_RE.sub(r"\\\1", text)


def md_url(url: str) -> str:
    """A URL that cannot end a Markdown link early."""
    return url.translate(_URL_UNSAFE)
