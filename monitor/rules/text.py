"""How text becomes comparable tokens, the same way for queries and for items.

A token is a run of letters and digits (any script), possibly joined by internal
apostrophes (``O'Brien``, ``Xi'an``). A trailing possessive ``'s`` / ``’s`` is not
part of the token, so ``Xi's`` yields ``xi``. Everything else (spaces, hyphens,
dots, underscores) separates tokens: ``Xi-Putin`` yields ``xi``, ``putin``.

Tokens are *folded* for comparison: compatibility-decomposed (NFKD), combining
accents dropped, case-folded, and a few letters that have no decomposition
mapped to their usual ASCII spelling (``ł`` -> ``l``). Offsets always refer to the
original, unfolded string, so a match can be highlighted where it was found.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import NamedTuple


def _mark_ranges() -> str:
    """Regex class body covering every combining mark (categories Mn, Mc, Me).

    ``re``'s ``\\w`` excludes marks, so without them text in decomposed form
    (``Zelensky`` + U+0301) or in Indic scripts would be cut mid-word. Only the
    Basic Multilingual Plane is covered: it holds the marks of all widely used
    scripts, and a BMP-only class compiles to a bitmap that ``re`` tests quickly.
    """
    marks = [c for c in range(0x10000) if unicodedata.category(chr(c))[0] == "M"]
    ranges: list[tuple[int, int]] = []
    for c in marks:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


_MARKS = _mark_ranges()
_HAS_MARK = re.compile(f"[{_MARKS}]")


def _token_pattern(word: str) -> re.Pattern[str]:
    # Group 1 is the token, group 2 a possessive 's after its last apostrophe
    # (empty when there is none), so "Xi's" gives "Xi" and never a stray "s".
    # Both are groups so that re.split() returns every character of the text:
    # separator, token, possessive, separator, ... (see tokenize).
    return re.compile(rf"({word}+(?:['\u2019](?![sS](?!{word})){word}+)*)((?:['\u2019][sS](?!{word}))?)")


# Most text has no combining marks, and plain \w is several times faster than
# a class that adds them; the full pattern is kept for text that needs it.
_TOKEN_FAST = _token_pattern(r"\w")
_TOKEN = _token_pattern(rf"[\w{_MARKS}]")

_NONSPACING = {c: None for c in range(0x20000) if unicodedata.category(chr(c)) == "Mn"}
# Letters without a Unicode decomposition that readers still treat as accented
# Latin letters, plus the typographic apostrophe.
_EXTRA_FOLDS = str.maketrans(
    {
        "ł": "l",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ħ": "h",
        "ı": "i",
        "ŧ": "t",
        "æ": "ae",
        "œ": "oe",
        "þ": "th",
        "\u2019": "'",
    }
)


def fold(text: str) -> str:
    """Fold a string for comparison: no case, no accents, compatibility forms."""
    if text.isascii():
        return text.lower()
    return _fold_unicode(text)


@lru_cache(maxsize=65536)
def _fold_unicode(text: str) -> str:
    # NFKD again after casefold: folding can produce new composed or
    # compatibility characters ("℃" -> "°c" only after the first NFKD).
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return decomposed.translate(_NONSPACING).translate(_EXTRA_FOLDS)


@dataclass(frozen=True, slots=True)
class Tokens:
    """Folded tokens of one string, with their offsets in that string."""

    text: str
    folded: tuple[str, ...]
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.folded)


def tokenize(text: str) -> Tokens:
    """Split ``text`` into folded tokens with original character offsets."""
    # Underscore is a \w character in `re` but a separator for us; a space in
    # its place keeps every offset unchanged. So does lower-casing, except for
    # the rare character that lower-cases to two ("İ"): then scan the original.
    scanned = text.replace("_", " ")
    lowered = scanned.lower()
    if len(lowered) == len(text):
        scanned = lowered
    pattern = _TOKEN_FAST if text.isascii() or not _HAS_MARK.search(text) else _TOKEN
    # split() cuts the text into (separator, token, possessive) triples plus a
    # final separator, so running sums of their lengths give every offset
    # without a Python-level step per token: item 3i+1 is token i, it starts
    # where the parts before it end and ends where it ends.
    parts = pattern.split(scanned)
    ends = list(accumulate(map(len, parts)))
    pieces = parts[1::3]
    if text.isascii():
        folded = tuple(pieces)
    elif scanned is lowered:
        # Lower-cased ASCII words are folded already; only the others need work.
        folded = tuple([w if w.isascii() else _fold_unicode(w) for w in pieces])
    else:
        folded = tuple([fold(w) for w in pieces])
    return Tokens(text, folded, tuple(ends[0:-1:3]), tuple(ends[1::3]))


@lru_cache(maxsize=65536)
def words(text: str) -> tuple[str, ...]:
    """The folded tokens of ``text``; how names and query values are compared.

    Cached: the same entity names come back in item after item.
    """
    return tokenize(text).folded


class WordPattern(NamedTuple):
    """Consecutive folded words; with ``prefix``, the last one is only a prefix."""

    words: tuple[str, ...]
    prefix: bool = False

    def occurs_in(self, sequence: tuple[str, ...]) -> bool:
        """Whether the pattern occurs anywhere in a sequence of folded words."""
        words = self.words
        if not self.prefix:
            if len(words) == 1:
                return words[0] in sequence  # the common case, without a Python loop
            n, head = len(words), words[0]
            return any(sequence[i : i + n] == words for i, word in enumerate(sequence) if word == head)
        return any(self.starts(sequence, i) for i in range(len(sequence) - len(words) + 1))

    def starts(self, sequence: tuple[str, ...], i: int) -> bool:
        """Whether the pattern occurs in ``sequence`` at position ``i``."""
        words, n = self.words, len(self.words)
        if i + n > len(sequence) or sequence[i : i + n - 1] != words[:-1]:
            return False
        last = sequence[i + n - 1]
        return last.startswith(words[-1]) if self.prefix else last == words[-1]


class IndexedText:
    """The tokens of one string with postings, to find words and phrases quickly."""

    __slots__ = ("tokens", "postings", "_sorted")

    def __init__(self, text: str):
        self.tokens = tokenize(text)
        postings: dict[str, list[int]] = {}
        for position, word in enumerate(self.tokens.folded):
            found = postings.get(word)
            if found is None:
                postings[word] = [position]
            else:
                found.append(position)
        self.postings = postings
        self._sorted: list[str] | None = None

    def find(self, pattern: WordPattern) -> list[tuple[int, int]]:
        """(first, last) token positions of every occurrence of ``pattern``."""
        words = pattern.words
        if len(words) == 1:
            if pattern.prefix:
                return [(p, p) for word in self.words_starting(words[0]) for p in self.postings[word]]
            return [(p, p) for p in self.postings.get(words[0], ())]
        folded, n = self.tokens.folded, len(words)
        if pattern.prefix:
            return [(p, p + n - 1) for p in self.postings.get(words[0], ()) if pattern.starts(folded, p)]
        return [(p, p + n - 1) for p in self.postings.get(words[0], ()) if folded[p : p + n] == words]

    def words_starting(self, prefix: str) -> list[str]:
        """The distinct words that start with ``prefix``, in alphabetical order."""
        # Sorted once, the words that share a prefix sit together: a binary
        # search finds the first, however many words the text has.
        if self._sorted is None:
            self._sorted = sorted(self.postings)
        ordered = self._sorted
        first = last = bisect.bisect_left(ordered, prefix)
        while last < len(ordered) and ordered[last].startswith(prefix):
            last += 1
        return ordered[first:last]

    def positions_of(self, start: int, end: int) -> tuple[int, int]:
        """First and last token positions inside a character range, or (-1, -1)."""
        first = bisect.bisect_right(self.tokens.ends, start)
        last = bisect.bisect_left(self.tokens.starts, end) - 1
        return (first, last) if first <= last else (-1, -1)


def fold_regex(pattern: str) -> str:
    """Fold the non-ASCII characters of a regex so it can match folded tokens.

    Only ASCII characters have a meaning in regex syntax, so folding the others
    (``é`` -> ``e``) never changes the structure of the pattern; ASCII case is
    left to ``re.IGNORECASE``.
    """
    return "".join(ch if ch.isascii() else fold(ch) for ch in pattern)


_HOST = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://(?:[^@/?#]*@)?([^:/?#\[\]]+)")


def hostname_span(link: str) -> tuple[int, int] | None:
    """Offsets of the hostname in an absolute URL, or None if there is none."""
    m = _HOST.match(link.strip())
    if m is None:
        return None
    lead = len(link) - len(link.lstrip())
    start, end = m.span(1)
    return start + lead, end + lead


def normalize_host(value: str) -> str:
    """A hostname (or a URL, leniently) reduced to lower case without a final dot."""
    span = hostname_span(value)
    host = value[span[0] : span[1]] if span else value.split("/", 1)[0]
    return fold(host.strip().rstrip("."))
