"""Regular expressions in rules: RE2, so matching takes linear time whatever the pattern.

A rule's ``/regex/`` comes from a user and runs against every word of every
item. A backtracking engine (Python's ``re``) takes exponential time on
patterns such as ``(a+)+b``, and one such rule would stall every feed. RE2
(the ``google-re2`` package) never backtracks: its time is linear in the text,
times at most the size of the compiled program.

RE2 has no lookaround, backreferences, atomic groups or possessive
quantifiers; a pattern using one is refused with the position of the construct.
The rest of the syntax people write is Python's and RE2's alike. Where the two
disagree on a meaning, the pattern is rewritten so it keeps the meaning rules
have always had (a regex is matched, case-insensitively, against one whole
folded word):

- ``\\w`` / ``\\W`` are Unicode-aware, as in Python: every non-ASCII character
  counts as a word character (a word never holds non-ASCII punctuation, so
  this is exact for words and far cheaper than ``[\\p{L}\\p{N}_]``);
- ``\\d`` / ``\\D`` are Unicode decimal digits (``\\p{Nd}``);
- ``\\b`` is a Unicode word boundary at the ends of the word, where a pattern
  puts it (RE2's own ``\\b`` is ASCII-only); ``\\B`` is refused;
- ``\\Z`` is the end of the word (RE2 spells it ``\\z``); ``\\uXXXX`` and
  ``\\UXXXXXXXX`` are characters; ``{,n}`` means ``{0,n}``.

RE2 bounds the memory of each compiled pattern; a pattern too large for it is
refused. :func:`cost_warnings` names patterns that are accepted but still
costly, for ``check`` and ``rules lint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import re2

# RE2's memory budget for one pattern: its program and the cache of DFA states.
# Past it a pattern is refused at compile time (too large) or, at match time,
# RE2 falls back from the DFA to its NFA, slower but still linear.
MAX_MEMORY = 2 << 20
# Instructions of a compiled pattern past which it is reported as costly: the
# NFA that RE2 falls back to spends up to this many steps on each character.
MAX_PROGRAM_SIZE = 2000
# A counted repetition at least this large after an unbounded one (``[ab]*a[ab]{100}``)
# makes the DFA remember that many characters: up to 2^n states, so RE2 gives
# up on the DFA and every character costs n NFA steps.
MAX_COUNT_AFTER_LOOP = 100

SYNTAX_HINT = "rules use RE2 syntax, see https://github.com/google/re2/wiki/Syntax"

_WORD = r"0-9A-Za-z_\x{80}-\x{10FFFF}"
_NOT_WORD = r"\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f"
_BOUNDARY = r"(?:^|$|\b)"
_ESCAPES_OUTSIDE = {"w": f"[{_WORD}]", "W": f"[{_NOT_WORD}]", "d": r"\p{Nd}", "D": r"\P{Nd}", "Z": r"\z"}
_ESCAPES_INSIDE = {"w": _WORD, "W": _NOT_WORD, "d": r"\p{Nd}", "D": r"\P{Nd}", "b": r"\x08"}

# (?X constructs RE2 does not have, longest first.
_UNSUPPORTED_GROUPS = (
    ("(?<=", "lookbehind (?<=...) is not supported"),
    ("(?<!", "negative lookbehind (?<!...) is not supported"),
    ("(?P=", "backreference (?P=name) is not supported"),
    ("(?=", "lookahead (?=...) is not supported"),
    ("(?!", "negative lookahead (?!...) is not supported"),
    ("(?>", "atomic group (?>...) is not supported"),
    ("(?(", "conditional group (?(...)...) is not supported"),
    ("(?#", "comment (?#...) is not supported"),
)

# RE2's error texts ("missing ]: [tsin") in the words rule errors use; {} is RE2's quote of the spot.
_RE2_ERRORS = (
    ("missing ]", "unterminated character set"),
    ("missing )", "missing ), unterminated subpattern"),
    ("unexpected )", "unbalanced parenthesis"),
    ("no argument for repetition operator", "nothing to repeat at {}"),
    ("bad repetition operator", "multiple repeat {}"),
    ("invalid repetition size", "bad repetition {} (at most 1000)"),
    ("invalid escape sequence", "bad escape {}"),
    ("invalid character class range", "bad character range {}"),
    ("invalid character class", "bad character class {}"),
    ("invalid perl operator", "unsupported group or flag {}"),
    ("invalid named capture group", "bad group name {}"),
    ("pattern too large", "pattern too large: it compiles to more than RE2 allows; simplify it"),
)


class RegexError(ValueError):
    """A pattern RE2 cannot compile. ``index`` (0-based) is where in the pattern, or None."""

    def __init__(self, message: str, index: int | None = None):
        self.message = message
        self.index = index
        super().__init__(message if index is None else f"at {index}: {message}")


class UnsupportedRegex(RegexError):
    """A construct RE2 does not have (lookaround, backreferences...); ``index`` is where it starts."""

    index: int


# The wrapper's internals, used for speed where this google-re2 has them; the public API otherwise.
_FAST_MATCH = hasattr(re2, "_Anchor") and hasattr(re2, "_NULL_SPAN")
_ANCHOR_BOTH = re2._Anchor.ANCHOR_BOTH if _FAST_MATCH else None
_NO_MATCH = re2._NULL_SPAN if _FAST_MATCH else None


@dataclass(frozen=True, eq=False)
class WordRegex:
    """A compiled rule regex. ``source`` is the pattern as given, ``pattern`` what RE2 runs."""

    source: str
    pattern: str
    compiled: re2._Regexp

    def fullmatch(self, word: str) -> bool:
        """Whether the pattern matches all of ``word``."""
        # RE2's own call, without the wrapper's match object and offset decoding
        # that a yes/no answer does not need: under half the cost on a short word.
        if not _FAST_MATCH:
            return self.compiled.fullmatch(word) is not None
        text = word.encode("utf-8", "surrogatepass")
        return self.compiled._regexp.Match(_ANCHOR_BOTH, text, 0, len(text))[0] != _NO_MATCH

    @property
    def program_size(self) -> int:
        """Instructions in the compiled program (forward or reverse, the larger)."""
        compiled = self.compiled
        return max(compiled.programsize, getattr(compiled, "reverseprogramsize", 0))


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False  # rules match case-insensitively, Unicode case folding included
    options.never_capture = True  # a yes/no answer needs no groups, and lets RE2 answer from its DFA
    options.log_errors = False  # errors are raised to the caller, not printed
    options.max_mem = MAX_MEMORY
    return options


_OPTIONS = _options()


@lru_cache(maxsize=1024)
def compile_word_regex(source: str) -> WordRegex:
    """Compile a rule's regex for RE2; raises RegexError naming what is wrong and where."""
    pattern, positions = _translate(source)
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        raise _explain_error(exc, pattern, positions) from None
    return WordRegex(source, pattern, compiled)


def cost_warnings(source: str) -> list[tuple[int, str]]:
    """Why a valid pattern is still costly to run, as (index in ``source``, message) pairs."""
    regex = compile_word_regex(source)
    found = []
    size = regex.program_size
    if size > MAX_PROGRAM_SIZE:
        found.append(
            (
                0,
                f"costly regex: it compiles to {size} RE2 instructions (more than {MAX_PROGRAM_SIZE}), "
                "so a long word can cost up to that many steps per character; use fewer or smaller {n,m} "
                "repetitions or Unicode classes (\\w already covers letters of every script)",
            )
        )
    count = _count_after_loop(source)
    if count is not None:
        index, bound = count
        found.append(
            (
                index,
                f"costly regex: a repetition of {bound} after an unbounded one (* or +) needs a DFA of up to "
                f"2^{bound} states, so RE2 falls back to slower matching; bound the earlier repetition "
                f"or make this one smaller than {MAX_COUNT_AFTER_LOOP}",
            )
        )
    return found


# --- rewriting Python-flavoured patterns for RE2 ------------------------------------


def _translate(source: str) -> tuple[str, list[int]]:
    """The RE2 pattern for ``source``, and for each of its characters the index in ``source``
    it came from; raises RegexError for a construct RE2 does not have."""
    out: list[str] = []
    positions: list[int] = []

    def emit(text: str, at: int) -> None:
        out.append(text)
        positions.extend([at] * len(text))

    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            i = _escape(source, i, emit, inside=False)
        elif ch == "[":
            i = _char_class(source, i, emit)
        elif ch == "(" and source.startswith("(?", i):
            for opening, message in _UNSUPPORTED_GROUPS:
                if source.startswith(opening, i):
                    raise UnsupportedRegex(f"{message}; {SYNTAX_HINT}", i)
            emit("(?", i)
            i += 2
        elif ch in "*+?}" and source[i + 1 : i + 2] == "+" and _is_quantifier(source, i):
            raise UnsupportedRegex(f"possessive quantifier {ch}+ is not supported; {SYNTAX_HINT}", i)
        elif ch == "{" and source.startswith("{,", i):
            close = _repetition_end(source, i)
            if close is not None:
                emit("{0", i)
                i += 1
            else:
                emit(ch, i)
                i += 1
        else:
            emit(ch, i)
            i += 1
    return "".join(out), positions


def _escape(source: str, i: int, emit: object, *, inside: bool) -> int:
    """Rewrite the escape at ``source[i]`` (a backslash); return the index after it."""
    assert callable(emit)
    letter = source[i + 1 : i + 2]
    if not letter:
        raise RegexError("bad escape (end of pattern)", i)
    table = _ESCAPES_INSIDE if inside else _ESCAPES_OUTSIDE
    if letter in table:
        emit(table[letter], i)
        return i + 2
    if letter in "uU":
        width = 4 if letter == "u" else 8
        digits = source[i + 2 : i + 2 + width]
        if len(digits) != width or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise RegexError(f"bad escape \\{letter}: expected {width} hexadecimal digits", i)
        emit(f"\\x{{{digits}}}", i)
        return i + 2 + width
    if not inside:
        if letter == "b":
            # At the very start a word boundary always holds (a word starts with a word character).
            if i > 0:
                emit(_BOUNDARY, i)
            return i + 2
        if letter == "B":
            raise UnsupportedRegex(f"\\B is not supported (a regex matches one whole word); {SYNTAX_HINT}", i)
        if letter in "123456789":
            raise UnsupportedRegex(f"backreference \\{letter} is not supported; {SYNTAX_HINT}", i)
    if letter == "N" and source[i + 2 : i + 3] == "{":
        raise UnsupportedRegex(
            f"named character \\N{{...}} is not supported; write the character itself ({SYNTAX_HINT})", i
        )
    emit(source[i : i + 2], i)
    return i + 2


def _char_class(source: str, i: int, emit: object) -> int:
    """Rewrite the class ``[...]`` starting at ``source[i]``; return the index after it.

    An unterminated class is copied as it is, for RE2 to report.
    """
    assert callable(emit)
    emit("[", i)
    j = i + 1
    if source[j : j + 1] == "^":
        emit("^", j)
        j += 1
    if source[j : j + 1] == "]":  # a ] first in a class is a literal
        emit("]", j)
        j += 1
    while j < len(source):
        ch = source[j]
        if ch == "]":
            emit("]", j)
            return j + 1
        if ch == "\\":
            j = _escape(source, j, emit, inside=True)
        elif source.startswith("[:", j) and ":]" in source[j + 2 :]:
            end = source.index(":]", j + 2) + 2  # a POSIX class such as [:alpha:]
            emit(source[j:end], j)
            j = end
        else:
            emit(ch, j)
            j += 1
    return j


def _repetition_end(source: str, i: int) -> int | None:
    """The index of the ``}`` closing a repetition ``{n}``, ``{n,}``, ``{n,m}`` or ``{,m}`` at ``i``."""
    j = i + 1
    while j < len(source) and (source[j].isdigit() or source[j] == ","):
        j += 1
    body = source[i + 1 : j]
    if j < len(source) and source[j] == "}" and body.count(",") <= 1 and body.replace(",", ""):
        return j
    return None


def _is_quantifier(source: str, i: int) -> bool:
    """Whether ``source[i]`` (one of ``*+?}``) ends a quantifier rather than being a literal or a group's ``(?``."""
    if i == 0 or source[i - 1] == "\\" and not _escaped_backslash(source, i - 1):
        return False
    if source[i] == "?" and source[i - 1] == "(":
        return False
    if source[i] == "}":
        opening = source.rfind("{", 0, i)
        return opening >= 0 and _repetition_end(source, opening) == i
    return True


def _escaped_backslash(source: str, i: int) -> bool:
    """Whether the backslash at ``i`` is itself escaped."""
    count = 0
    while i - 1 - count >= 0 and source[i - 1 - count] == "\\":
        count += 1
    return count % 2 == 1


def _explain_error(exc: re2.error, pattern: str, positions: list[int]) -> RegexError:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    kind, _, fragment = text.partition(": ")
    index = None
    if fragment:
        found = pattern.find(fragment)
        if found >= 0 and found < len(positions):
            index = positions[found]
    for prefix, words in _RE2_ERRORS:
        if kind.startswith(prefix):
            return RegexError(words.replace("{}", fragment).strip(), index)
    return RegexError(text or "RE2 cannot compile this pattern", index)


def _count_after_loop(source: str) -> tuple[int, int] | None:
    """The first counted repetition of at least MAX_COUNT_AFTER_LOOP that follows an unbounded one:
    (index of its ``{``, its upper bound)."""
    looped = False
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "[":
            i = _class_end(source, i)
            continue
        if ch in "*+" and _is_quantifier(source, i):
            looped = True
        elif ch == "{":
            close = _repetition_end(source, i)
            if close is not None:
                low, _, high = source[i + 1 : close].partition(",")
                unbounded = "," in source[i + 1 : close] and not high
                if unbounded:
                    looped = True
                bound = int(high or low or 0)
                if looped and bound >= MAX_COUNT_AFTER_LOOP:
                    return i, bound
                i = close + 1
                continue
        i += 1
    return None


def _class_end(source: str, i: int) -> int:
    j = i + 1
    if source[j : j + 1] == "^":
        j += 1
    if source[j : j + 1] == "]":
        j += 1
    while j < len(source):
        if source[j] == "\\":
            j += 2
        elif source[j] == "]":
            return j + 1
        else:
            j += 1
    return j
