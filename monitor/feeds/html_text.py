"""Plain text for matching: HTML reduced to readable text, and the whitespace rule every text follows.

:func:`html_to_text` reads the markup in one pass, in time linear in its
length whatever it holds (unclosed tags, quotes, comments). :func:`collapse_lines`
and :func:`collapse_spaces` are the same rule for text that is not HTML: one
space between words, soft hyphens and zero-width spaces removed. Pure.
"""

from __future__ import annotations

import re
from html import unescape

__all__ = ["collapse_lines", "collapse_spaces", "html_to_text"]


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
        return collapse_lines(html)
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
    return collapse_lines("".join(out))


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


_SPACES = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u00ad\u200b\ufeff]")


def collapse_spaces(text: str) -> str:
    # str.split() splits on exactly the characters \s matches, and faster.
    return " ".join(_INVISIBLE.sub("", text).split())


def collapse_lines(text: str) -> str:
    """One space between words, one newline between non-empty lines."""
    lines = (" ".join(line.split()) for line in _INVISIBLE.sub("", text).splitlines())
    return "\n".join(line for line in lines if line)
