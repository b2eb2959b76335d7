"""PURE: what an item may hold once parsed. Control characters removed, every field cut to size.

Applied to every item and feed title a parser produces, as the last step, so
whatever a feed does (an entity expansion nobody foresaw, a 1 MB title, NUL
bytes, an escape sequence for the terminal) nothing larger or dirtier than
this is stored, matched, rendered into an alert or printed.

Bidirectional controls (U+202A-U+202E, U+2066-U+2069) are kept here: right-to-left
text uses them legitimately and the stored text stays as published. What is
shown neutralises them (:mod:`monitor.display`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

from monitor.items import Item

__all__ = ["LINK_CHARS", "MAX_TEXT_CHARS", "TITLE_CHARS", "clean_item", "clean_line", "cut"]

# A title is a line of a message: 1,000 characters is a paragraph, not a headline.
TITLE_CHARS = 1_000
# The body, unless poll.max_text_chars says otherwise (a long article is about 50,000).
MAX_TEXT_CHARS = 100_000
NAME_CHARS = 200  # an author
TAG_CHARS = 100
MAX_TAGS = 64
# A longer link is dropped, not cut: a cut link leads nowhere.
LINK_CHARS = 4_096
# A longer guid is replaced by its hash: cutting it could make two items one.
GUID_CHARS = 1_000
ELLIPSIS = "…"

# C0 controls but tab and newline, DEL, C1 controls; and lone surrogates (a JSON
# "\ud800"), which no database or message can encode.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_line(text: str | None, limit: int = TITLE_CHARS) -> str:
    """``text`` without control characters or surrounding spaces, cut to ``limit`` characters."""
    return cut(_CONTROLS.sub(_replacement, text or "").strip(), limit)


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS


def clean_item(item: Item, max_text_chars: int = MAX_TEXT_CHARS) -> Item:
    """``item`` with every field clean and bounded."""
    tags = tuple(dict.fromkeys(tag for tag in (clean_line(tag, TAG_CHARS) for tag in item.tags[:MAX_TAGS]) if tag))
    return replace(
        item,
        guid=_guid(item.guid),
        link=_link(item.link),
        title=clean_line(item.title, TITLE_CHARS),
        text=clean_line(item.text, max_text_chars),
        author=clean_line(item.author, NAME_CHARS) or None,
        tags=tags,
    )


def _replacement(control: re.Match[str]) -> str:
    # A lone surrogate stood for a character: say one was there. A control character carries nothing.
    return "\ufffd" if control.group() >= "\ud800" else ""


def _guid(guid: str | None) -> str | None:
    if guid is None:
        return None
    cleaned = _CONTROLS.sub(_replacement, guid)
    if len(cleaned) <= GUID_CHARS:
        return cleaned or None
    return "sha256:" + hashlib.sha256(cleaned.encode("utf-8")).hexdigest()


def _link(link: str | None) -> str | None:
    if link is None or len(link) > LINK_CHARS or _CONTROLS.search(link):
        return None
    return link
