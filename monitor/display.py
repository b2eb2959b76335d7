"""PURE: text from feeds made safe to show, in alerts and on the terminal.

Bidirectional overrides and isolates (U+202A-U+202E, U+2066-U+2069) change the
order in which everything after them is displayed, beyond the field they
came in: a title could make the link, the rule name or the next line read
backwards, or a file name read as another. They are removed from what is
shown; the stored text keeps them, as published (right-to-left writing uses
them legitimately, and the implicit ordering of the letters stays).
Control characters never reach here: they are removed when items are stored
(:mod:`monitor.feeds.clean`).
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["BIDI_CONTROLS", "shown"]

BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_DROP = str.maketrans(dict.fromkeys(BIDI_CONTROLS))

S = TypeVar("S", bound=str)


def shown(text: S) -> S:
    """``text`` without bidirectional controls (a Markup stays Markup)."""
    return text.translate(_DROP)  # type: ignore[return-value]
