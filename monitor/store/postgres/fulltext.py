"""PURE: full-text search on PostgreSQL that finds what SQLite's FTS5 finds.

``news-monitor search`` takes FTS5 query syntax, and the SQLite store indexes with FTS5's
``unicode61 remove_diacritics 2`` tokenizer: words are runs of letters and digits, lower-cased,
accents removed, never stemmed. PostgreSQL's own parsers and dictionaries split and stem
differently (and depend on the database's locale), so neither side is left to them here:

- :func:`document_vector` tokenizes an item as FTS5 does and writes the ``tsvector`` literal
  itself: title words weigh ``A`` and come first, text words weigh ``B``; each field starts with
  the mark ``^`` (never a word), which is how ``^word`` finds a field's first word and why no
  phrase runs from the title into the text.
- :func:`parse` reads the FTS5 grammar (phrases, ``prefix*``, ``+``, implicit AND, ``AND``,
  ``OR``, ``NOT`` with FTS5's precedence, parentheses, ``title:`` / ``text:`` / ``{title text}:``
  / ``-title:`` column filters, ``^`` and ``NEAR(...)``) into a ``tsquery`` literal, and raises
  :class:`QuerySyntaxError` where FTS5 raises a syntax error, so that the caller falls back to
  plain words as the SQLite store does. One thing is widened: ``NEAR(a b)`` finds items with
  both phrases anywhere (``tsquery`` measures exact distances only).
- :func:`highlight` and :func:`snippet` mark the matched words as FTS5's ``highlight()`` and
  ``snippet()`` do (the same 24-word window, ``…`` where it was cut).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from monitor.store.records import HIGHLIGHT_END, HIGHLIGHT_START

TITLE, TEXT = "title", "text"
COLUMNS = frozenset({TITLE, TEXT})
_WEIGHTS = {TITLE: "A", TEXT: "B"}
MAX_POSITION = 16383  # PostgreSQL's last word position; later words share it
MAX_LEXEME_BYTES = 2046  # PostgreSQL refuses longer words; nobody searches for them
SNIPPET_WORDS = 24
START_MARK = "^"  # the lexeme before each field's first word


class QuerySyntaxError(ValueError):
    """Not valid FTS5 query syntax (the caller searches the words instead)."""


# --- words ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    word: str  # folded: lower case, accents removed
    start: int  # where it is in the original text
    end: int


def _is_word_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LNM" or category == "Co"


def fold(word: str) -> str:
    """A word as FTS5's unicode61 tokenizer (remove_diacritics 2) stores it: lower case, no accents."""
    if word.isascii():
        return word.lower()
    decomposed = unicodedata.normalize("NFD", word)
    stripped = "".join(char for char in decomposed if unicodedata.category(char) != "Mn")
    return unicodedata.normalize("NFC", stripped).lower()


# Runs of ASCII letters and digits, or of anything not ASCII (looked at one character at a time).
_RUNS = re.compile(r"[0-9A-Za-z\x80-\U0010FFFF]+")
_ASCII_WORD = re.compile(r"[0-9a-z]+")


def tokens(text: str) -> Iterator[Token]:
    """The words of ``text`` with their places."""
    for run in _RUNS.finditer(text):
        if run.group().isascii():
            yield from _token(text, run.start(), run.end())
            continue
        start = -1
        for index in range(run.start(), run.end()):
            if _is_word_char(text[index]):
                if start < 0:
                    start = index
            elif start >= 0:
                yield from _token(text, start, index)
                start = -1
        if start >= 0:
            yield from _token(text, start, run.end())


def _token(text: str, start: int, end: int) -> Iterator[Token]:
    word = fold(text[start:end])
    if word and len(word.encode()) <= MAX_LEXEME_BYTES:
        yield Token(word, start, end)


def _words(text: str) -> list[str]:
    """The folded words of ``text`` (as :func:`tokens` finds them; faster for plain ASCII)."""
    if text.isascii():
        return [word for word in _ASCII_WORD.findall(text.lower()) if len(word) <= MAX_LEXEME_BYTES]
    return [token.word for token in tokens(text)]


def _quote(word: str) -> str:
    return "'" + word.replace("\\", "\\\\").replace("'", "''") + "'"


def document_vector(title: str, text: str) -> str:
    """The ``tsvector`` literal of an item: title words at weight A, then text words at weight B."""
    positions: dict[str, list[str]] = {}
    position = 0
    for column, value in ((TITLE, title), (TEXT, text)):
        for word in (START_MARK, *_words(value)):
            position = min(position + 1, MAX_POSITION)
            positions.setdefault(word, []).append(f"{position}{_WEIGHTS[column]}")
    return " ".join(f"{_quote(word)}:{','.join(places)}" for word, places in positions.items())


# --- the query language ----------------------------------------------------------------------


@dataclass(frozen=True)
class Phrase:
    words: tuple[tuple[str, bool], ...]  # (word, prefix) in order
    columns: frozenset[str] = COLUMNS
    first: bool = False  # ^phrase: at the start of its field

    def tsquery(self) -> str:
        weight = "" if self.columns == COLUMNS else "".join(sorted(_WEIGHTS[c] for c in self.columns))
        words = ((START_MARK, False), *self.words) if self.first else self.words
        parts = [f"{_quote(word)}:{'*' if prefix else ''}{weight}".rstrip(":") for word, prefix in words]
        return parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")"


@dataclass(frozen=True)
class Op:
    kind: str  # "and", "or", "not" (left and not right)
    left: Node
    right: Node


@dataclass(frozen=True)
class Nothing:
    """A phrase with no words in it ("", "..."): FTS5 leaves it out."""


@dataclass(frozen=True)
class Never:
    """A phrase restricted to no column at all (``title:(text:x)``): matches no item."""


Node = Phrase | Op | Nothing | Never

_SINGLE = {"(": "LP", ")": "RP", "{": "LCP", "}": "RCP", ":": "COLON", ",": "COMMA", "+": "PLUS", "*": "STAR",
           "-": "MINUS", "^": "CARET"}  # fmt: skip
_KEYWORDS = {"AND", "OR", "NOT"}


def _is_bareword_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_") or ord(char) >= 0x80 or char == "\x1a"


def _lex(query: str) -> list[tuple[str, str]]:
    """FTS5's query tokens: (kind, text); kind STRING for barewords and "quoted strings"."""
    out: list[tuple[str, str]] = []
    index = 0
    while index < len(query):
        char = query[index]
        if char in " \t\n\r\f\v":
            index += 1
        elif char in _SINGLE:
            out.append((_SINGLE[char], char))
            index += 1
        elif char == '"':
            text: list[str] = []
            index += 1
            while True:
                if index >= len(query):
                    raise QuerySyntaxError("unterminated string")
                if query[index] == '"':
                    if query[index + 1 : index + 2] == '"':
                        text.append('"')
                        index += 2
                        continue
                    index += 1
                    break
                text.append(query[index])
                index += 1
            out.append(("STRING", "".join(text)))
        elif _is_bareword_char(char):
            end = index
            while end < len(query) and _is_bareword_char(query[end]):
                end += 1
            word = query[index:end]
            out.append((word, word) if word in _KEYWORDS else ("STRING", word))
            index = end
        else:
            raise QuerySyntaxError(f"syntax error near {char!r}")
    return out


class _Parser:
    """FTS5's grammar: OR < AND < NOT < implicit AND (a list of phrases), column filters, NEAR, ^."""

    def __init__(self, query: str):
        self.tokens = _lex(query)
        self.at = 0

    def peek(self, offset: int = 0) -> str | None:
        index = self.at + offset
        return self.tokens[index][0] if index < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise QuerySyntaxError(f"syntax error near {self.peek() or 'the end'}")
        self.at += 1
        return self.tokens[self.at - 1][1]

    def parse(self) -> Node:
        if not self.tokens:
            raise QuerySyntaxError("empty query")
        node = self.expr_or(COLUMNS)
        if self.peek() is not None:
            raise QuerySyntaxError(f"syntax error near {self.peek()}")
        return node

    def expr_or(self, columns: frozenset[str]) -> Node:
        node = self.expr_and(columns)
        while self.peek() == "OR":
            self.at += 1
            node = Op("or", node, self.expr_and(columns))
        return node

    def expr_and(self, columns: frozenset[str]) -> Node:
        node = self.expr_not(columns)
        while self.peek() == "AND":
            self.at += 1
            node = Op("and", node, self.expr_not(columns))
        return node

    def expr_not(self, columns: frozenset[str]) -> Node:
        node = self.primary(columns)
        while self.peek() == "NOT":
            self.at += 1
            node = Op("not", node, self.primary(columns))
        return node

    def primary(self, columns: frozenset[str]) -> Node:
        if self.peek() == "LP":
            self.at += 1
            node = self.expr_or(columns)
            self.take("RP")
            return node
        if self._colset_ahead():
            start = self.at
            restricted = columns & self.colset()
            self.take("COLON")
            if self.peek() == "LP":
                self.at += 1
                node = self.expr_or(restricted)
                self.take("RP")
                return node
            self.at = start
        node = self.cnearset(columns)
        while self.peek() in ("STRING", "CARET", "MINUS", "LCP"):  # implicit AND: a list of phrases
            node = Op("and", node, self.cnearset(columns))
        return node

    def _colset_ahead(self) -> bool:
        return self.peek() in ("MINUS", "LCP") or (self.peek() == "STRING" and self.peek(1) == "COLON")

    def colset(self) -> frozenset[str]:
        negate = self.peek() == "MINUS"
        if negate:
            self.at += 1
        names: list[str] = []
        if self.peek() == "LCP":
            self.at += 1
            names.append(self.take("STRING"))
            while self.peek() == "STRING":
                names.append(self.take("STRING"))
            self.take("RCP")
        else:
            names.append(self.take("STRING"))
        chosen = set()
        for name in names:
            if name.lower() not in COLUMNS:
                raise QuerySyntaxError(f"no such column: {name}")
            chosen.add(name.lower())
        return frozenset(COLUMNS - chosen if negate else chosen)

    def cnearset(self, columns: frozenset[str]) -> Node:
        if self._colset_ahead():
            columns = columns & self.colset()
            self.take("COLON")
        return self.nearset(columns)

    def nearset(self, columns: frozenset[str]) -> Node:
        if self.peek() == "CARET":
            self.at += 1
            found = self.phrase(columns)
            return Phrase(found.words, found.columns, first=True) if isinstance(found, Phrase) else found
        if self.peek() == "STRING" and self.peek(1) == "LP":
            if self.tokens[self.at][1] != "NEAR":
                raise QuerySyntaxError(f"syntax error near {self.tokens[self.at][1]}")
            self.at += 2
            node = self.phrase(columns)
            while self.peek() == "STRING":
                node = Op("and", node, self.phrase(columns))  # widened: each phrase anywhere
            if self.peek() == "COMMA":
                self.at += 1
                distance = self.take("STRING")
                if not distance.isdigit():
                    raise QuerySyntaxError(f"expected an integer distance, got {distance!r}")
            self.take("RP")
            return node
        return self.phrase(columns)

    def phrase(self, columns: frozenset[str]) -> Node:
        words: list[tuple[str, bool]] = []
        while True:
            found = [token.word for token in tokens(self.take("STRING"))]
            prefix = self.peek() == "STAR"
            if prefix:
                self.at += 1
            words += [(word, prefix and index == len(found) - 1) for index, word in enumerate(found)]
            if self.peek() != "PLUS":
                break
            self.at += 1
        if not words:
            return Nothing()
        if not columns:
            return Never()
        return Phrase(tuple(words), columns)


def parse(query: str) -> Node:
    """The query as FTS5 reads it; QuerySyntaxError where FTS5 would refuse it."""
    return _simplify(_Parser(query).parse())


def plain_words(query: str) -> Node:
    """What the SQLite store searches when the query is not valid syntax: each word, as a phrase."""
    words = [word for word in query.replace('"', " ").split() if word]
    return _simplify(_Parser(" ".join(f'"{word}"' for word in words)).parse()) if words else Nothing()


def _simplify(node: Node) -> Node:
    """Empty phrases left out, phrases that can never match folded in."""
    if not isinstance(node, Op):
        return node
    left, right = _simplify(node.left), _simplify(node.right)
    if isinstance(left, Nothing):
        return Nothing() if node.kind == "not" else right
    if isinstance(right, Nothing):
        return left
    if node.kind == "and":
        return Never() if isinstance(left, Never) or isinstance(right, Never) else Op("and", left, right)
    if node.kind == "or":
        return right if isinstance(left, Never) else left if isinstance(right, Never) else Op("or", left, right)
    return left if isinstance(right, Never) or isinstance(left, Never) else Op("not", left, right)


def to_tsquery(node: Node) -> str | None:
    """The ``tsquery`` literal of a parsed query; None when it can match nothing."""
    if isinstance(node, Nothing | Never):
        return None
    if isinstance(node, Phrase):
        return node.tsquery()
    left, right = to_tsquery(node.left), to_tsquery(node.right)
    operator = {"and": "&", "or": "|", "not": "& !"}[node.kind]
    return f"({left} {operator} {right})"


def phrases(node: Node) -> list[Phrase]:
    """The phrases an item matched on (not those after NOT): what highlighting marks."""
    if isinstance(node, Phrase):
        return [node]
    if isinstance(node, Op):
        return phrases(node.left) + ([] if node.kind == "not" else phrases(node.right))
    return []


# --- highlights and snippets ---------------------------------------------------------------------


def _instances(words: list[Token], found: list[Phrase], column: str) -> list[tuple[int, int, int]]:
    """Each phrase instance in ``words``: (first word index, phrase number, words), in order."""
    out: list[tuple[int, int, int]] = []
    for number, phrase in enumerate(found):
        if column not in phrase.columns:
            continue
        size = len(phrase.words)
        for index in range(min(len(words) - size + 1, 1) if phrase.first else len(words) - size + 1):
            if all(
                words[index + n].word.startswith(word) if prefix else words[index + n].word == word
                for n, (word, prefix) in enumerate(phrase.words)
            ):
                out.append((index, number, size))
    return sorted(out)


def _hits(instances: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    """(first, last) word index of each run of overlapping phrase instances, in order."""
    merged: list[tuple[int, int]] = []
    for first, _, size in instances:
        last = first + size - 1
        if merged and first <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(last, merged[-1][1]))
        else:
            merged.append((first, last))
    return merged


def _marked(text: str, words: list[Token], hits: list[tuple[int, int]], start: int, end: int) -> str:
    out: list[str] = []
    at = start
    for first, last in hits:
        begin, finish = words[first].start, min(words[last].end, end)  # a phrase cut by the window: its part
        if begin < start or begin >= end:
            continue
        out += [text[at:begin], HIGHLIGHT_START, text[begin:finish], HIGHLIGHT_END]
        at = finish
    out.append(text[at:end])
    return "".join(out)


def highlight(text: str, found: list[Phrase], column: str) -> str:
    """``text`` whole, each matched phrase between the highlight marks."""
    words = list(tokens(text))
    return _marked(text, words, _hits(_instances(words, found, column)), 0, len(text))


def _sentence_starts(text: str, words: list[Token]) -> list[int]:
    """The words that begin a sentence as FTS5 sees it: the first, and each after ". " or ": "."""
    starts = [0] if words else []
    for index, word in enumerate(words[1:], start=1):
        at = word.start - 1
        while at >= 0 and text[at] in " \t\n\r":
            at -= 1
        if at < word.start - 1 and at >= 0 and text[at] in ".:":
            starts.append(index)
    return starts


def _score(instances: list[tuple[int, int, int]], start: int, size: int, count: int) -> tuple[int, int]:
    """FTS5's score of the window of ``size`` words from ``start`` (1000 a phrase, 1 a repeat), and where a
    window around its instances would start."""
    seen: set[int] = set()
    score, first, last = 0, -1, 0
    for offset, number, words in instances:
        if start <= offset < start + size:
            score += 1 if number in seen else 1000
            seen.add(number)
            first = offset if first < 0 else first
            last = offset + words
    spare = size - (last - first)
    adjusted = first - (spare // 2 if spare >= 0 else -(-spare // 2))  # C's division: towards zero
    adjusted = min(adjusted, count - size)
    return score, max(adjusted, 0)


def snippet(text: str, found: list[Phrase], column: str, size: int = SNIPPET_WORDS) -> str:
    """The ``size`` words of ``text`` FTS5's ``snippet()`` picks (the most phrases, then a sentence's start),
    marked, with ``…`` where it was cut."""
    words = list(tokens(text))
    if not words:
        return text
    instances = _instances(words, found, column)
    starts = _sentence_starts(text, words)
    best_score, best_start = 0, 0
    for offset, _, _ in instances:
        score, adjusted = _score(instances, offset, size, len(words))
        if score > best_score:
            best_score, best_start = score, adjusted
        if len(words) > size:
            at = 0
            while at < len(starts) - 1 and starts[at + 1] <= offset:
                at += 1
            if starts[at] < offset:
                score, _ = _score(instances, starts[at], size, len(words))
                score += 120 if starts[at] == 0 else 100
                if score > best_score:
                    best_score, best_start = score, starts[at]
    stop = min(best_start + size, len(words))
    begin = 0 if best_start == 0 else words[best_start].start
    end = len(text) if stop == len(words) else words[stop - 1].end
    marked = _marked(text, words, _hits(instances), begin, end)
    return ("…" if best_start > 0 else "") + marked + ("…" if stop < len(words) else "")
