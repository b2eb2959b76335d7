"""The watch-rule language: query text -> AST, with errors that point at a column.

Grammar, loosest binding first (``NOT`` binds tighter than ``AND``, which binds
tighter than ``OR``; ``NEAR`` binds tightest of all)::

    query   := or EOF
    or      := and ("OR" and)*
    and     := unary (["AND"] unary)*        adjacent operands mean AND
    unary   := ("NOT" | "-") unary | near
    near    := primary ("NEAR/" n primary)*
    primary := [field ":"] (word | "phrase" | prefix* | /regex/ | "(" or ")")

``AND``, ``OR``, ``NOT`` and ``NEAR/n`` are keywords only in upper case; ``and``
is an ordinary word. A field written before a group applies to every term in
it unless a term names its own field.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from monitor.errors import RuleSyntaxError
from monitor.rules.regex import RegexError, UnsupportedRegex, compile_word_regex
from monitor.rules.text import fold_regex, words

TEXT_FIELDS = ("title", "text", "author", "feed", "tag", "site")
ENTITY_FIELDS = ("person", "org", "place", "entity")
FIELDS = TEXT_FIELDS + ENTITY_FIELDS
KINDS = ("word", "phrase", "prefix", "regex")

# Deeper nesting than this is a mistake, not a query; it would also exhaust
# Python's recursion limit in the recursive-descent parser.
MAX_DEPTH = 64


class Node:
    """Base of the AST."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Term(Node):
    """One thing to look for. ``value`` is as written (no quotes, slashes or ``*``)."""

    field: str
    kind: str
    value: str
    column: int

    @property
    def label(self) -> str:
        """The term as a user would write it, e.g. ``person:Putin`` or ``"peace talks"``."""
        if self.kind == "phrase":
            body = '"' + self.value.replace('"', '\\"') + '"'
        elif self.kind == "prefix":
            body = self.value + "*"
        elif self.kind == "regex":
            body = "/" + self.value.replace("/", "\\/") + "/"
        else:
            body = self.value
        return body if self.field == "text" else f"{self.field}:{body}"


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node


@dataclass(frozen=True, slots=True)
class Near(Node):
    """``left`` and ``right`` at most ``distance`` words apart, in either order."""

    left: Node
    right: Node
    distance: int


def parse_query(query: str) -> Node:
    """Parse a watch-rule query; raise RuleSyntaxError(message, column) if it is malformed."""
    tokens = _Lexer(query).tokens()
    if tokens[0].kind == "EOF":
        raise RuleSyntaxError("empty query", 1)
    return _Parser(tokens).parse()


def terms_of(node: Node) -> list[Term]:
    """Every term of the AST, in query order (negated ones included)."""
    return list(_iter_terms(node))


def _iter_terms(node: Node) -> Iterator[Term]:
    if isinstance(node, Term):
        yield node
    elif isinstance(node, (And, Or)):
        for child in node.children:
            yield from _iter_terms(child)
    elif isinstance(node, Not):
        yield from _iter_terms(node.child)
    elif isinstance(node, Near):
        yield from _iter_terms(node.left)
        yield from _iter_terms(node.right)


# --- lexing ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # AND OR NOT NEAR MINUS FIELD LPAREN RPAREN WORD PHRASE PREFIX REGEX EOF
    text: str  # as written, for messages
    column: int
    value: str = ""
    distance: int = 0


_FIELD = re.compile(r"([A-Za-z]+):")
_NEAR = re.compile(r"NEAR(?:/(\d+))?")
_STOP = set(' \t\r\n\f\v()"')
_OPERATOR_HINTS = {"&&": "AND", "&": "AND", "||": "OR", "|": "OR", "!": "NOT"}


class _Lexer:
    def __init__(self, query: str):
        self.q = query
        self.i = 0
        self.out: list[_Token] = []

    def tokens(self) -> list[_Token]:
        q = self.q
        while self.i < len(q):
            ch = q[self.i]
            if ch.isspace():
                self.i += 1
            elif ch in "()":
                self._emit("LPAREN" if ch == "(" else "RPAREN", ch, self.i)
                self.i += 1
            elif ch == '"':
                self._phrase()
            elif ch == "/":
                self._regex()
            elif ch == "-" and self._at_token_start():
                self._minus()
            else:
                self._bare()
        self._emit("EOF", "end of query", len(q))
        return self.out

    def _emit(self, kind: str, text: str, index: int, value: str = "", distance: int = 0) -> None:
        self.out.append(_Token(kind, text, index + 1, value, distance))

    def _at_token_start(self) -> bool:
        return self.i == 0 or self.q[self.i - 1].isspace() or self.q[self.i - 1] in "(-:"

    def _minus(self) -> None:
        nxt = self.q[self.i + 1 : self.i + 2]
        if not nxt or nxt.isspace() or nxt == ")":
            raise RuleSyntaxError("expected a term right after '-' (write -term or -(group))", self.i + 1)
        self._emit("MINUS", "-", self.i)
        self.i += 1

    def _phrase(self) -> None:
        start = self.i
        value, self.i = self._delimited('"', start)
        if self.i < 0:
            raise RuleSyntaxError('unterminated phrase, missing closing "', start + 1)
        if not value.strip():
            raise RuleSyntaxError("empty phrase", start + 1)
        if not words(value):
            raise RuleSyntaxError(f'phrase "{value}" has no letters or digits to match', start + 1)
        if self.q[self.i : self.i + 1] == "~":
            raise RuleSyntaxError("'~' proximity is not supported; use a NEAR/n b", self.i + 1)
        self._emit("PHRASE", self.q[start : self.i], start, value)

    def _regex(self) -> None:
        start = self.i
        pattern, self.i = self._delimited("/", start)
        if self.i < 0:
            raise RuleSyntaxError("unterminated regex, missing closing /", start + 1)
        if not pattern:
            raise RuleSyntaxError("empty regex", start + 1)
        if any(ch.isspace() for ch in pattern):
            raise RuleSyntaxError("a regex matches one word, so it cannot contain spaces", start + 1)
        try:
            compile_word_regex(pattern)  # as written, so that a position is the user's
            compile_word_regex(fold_regex(pattern))  # as it runs against folded words
        except UnsupportedRegex as exc:
            raise RuleSyntaxError(exc.message, self._pattern_column(start, exc.index)) from None
        except RegexError as exc:
            raise RuleSyntaxError(f"invalid regex: {exc.message}", start + 1) from None
        if self.i < len(self.q) and self.q[self.i] not in _STOP:
            raise RuleSyntaxError(
                "expected a space or ')' after the regex (regexes are always case-insensitive)",
                self.i + 1,
            )
        self._emit("REGEX", self.q[start : self.i], start, pattern)

    def _pattern_column(self, start: int, index: int) -> int:
        """The column of character ``index`` of the regex opened at ``start`` (``\\/`` counts two)."""
        i = start + 1
        for _ in range(index):
            i += 2 if self.q[i] == "\\" and self.q[i + 1 : i + 2] == "/" else 1
        return i + 1

    def _delimited(self, delimiter: str, start: int) -> tuple[str, int]:
        """Read from the opening delimiter at ``start`` to its unescaped partner.

        Returns the content (escapes of the delimiter removed) and the index just
        after the closing delimiter, or -1 if there is none. Other backslashes are
        kept, which a regex needs.
        """
        q, i, parts = self.q, start + 1, []
        while i < len(q):
            ch = q[i]
            if ch == "\\" and q[i + 1 : i + 2] == delimiter:
                parts.append(delimiter)
                i += 2
            elif ch == delimiter:
                return "".join(parts), i + 1
            else:
                parts.append(ch)
                i += 1
        return "", -1

    def _bare(self) -> None:
        q, start = self.q, self.i
        field = _FIELD.match(q, start)
        if field:
            self._field(field)
            return
        end = start
        while end < len(q) and q[end] not in _STOP:
            end += 1
        self.i = end
        run = q[start:end]
        if run in ("AND", "OR", "NOT"):
            self._emit(run, run, start)
        elif _NEAR.fullmatch(run) or run.startswith("NEAR/"):
            self._near(run, start)
        else:
            self._term(run, start)

    def _field(self, match: re.Match[str]) -> None:
        name, start = match.group(1), match.start()
        field = name.lower()
        if field not in FIELDS:
            raise RuleSyntaxError(
                f"unknown field '{name}'; expected one of {', '.join(FIELDS)}", start + 1
            )
        self._emit("FIELD", match.group(0), start, field)
        self.i = match.end()
        # A site value is a hostname or a URL; read it raw so "https:" is not
        # taken for another field.
        if field == "site" and self.i < len(self.q) and self.q[self.i] not in _STOP and self.q[self.i] != "/":
            end = self.i
            while end < len(self.q) and self.q[end] not in _STOP:
                end += 1
            run, at = self.q[self.i : end], self.i
            self.i = end
            if run.endswith("*") and "*" not in run[:-1] and len(run) > 1:
                self._emit("PREFIX", run, at, run[:-1])
            elif "*" in run:
                raise RuleSyntaxError("'*' is only allowed at the end of a site, e.g. site:bbc*", at + 1)
            else:
                self._emit("WORD", run, at, run)

    def _near(self, run: str, start: int) -> None:
        m = _NEAR.fullmatch(run)
        if m is None or m.group(1) is None:
            raise RuleSyntaxError("expected NEAR/<number of words>, e.g. NEAR/10", start + 1)
        self._emit("NEAR", run, start, distance=int(m.group(1)))

    def _term(self, run: str, start: int) -> None:
        if run.startswith("~"):
            raise RuleSyntaxError("'~' proximity is not supported; use a NEAR/n b", start + 1)
        if "*" in run[:-1]:
            if run.strip("*") == "":
                raise RuleSyntaxError("'*' must follow a word, e.g. negotiat*", start + 1)
            column = start + 1 + run.index("*")
            raise RuleSyntaxError("'*' is only allowed at the end of a word, e.g. negotiat*", column)
        kind, value = ("PREFIX", run[:-1]) if run.endswith("*") else ("WORD", run)
        if not value:
            raise RuleSyntaxError("'*' must follow a word, e.g. negotiat*", start + 1)
        if not words(value):
            hint = _OPERATOR_HINTS.get(run)
            if hint:
                raise RuleSyntaxError(f"unexpected '{run}'; write {hint}", start + 1)
            raise RuleSyntaxError(f"'{run}' has no letters or digits to match", start + 1)
        self._emit(kind, run, start, value)


# --- parsing --------------------------------------------------------------

_TERM_KINDS = {"WORD": "word", "PHRASE": "phrase", "PREFIX": "prefix", "REGEX": "regex"}
_PRIMARY_START = {"WORD", "PHRASE", "PREFIX", "REGEX", "FIELD", "LPAREN"}
_UNARY_START = _PRIMARY_START | {"NOT", "MINUS"}


class _Parser:
    def __init__(self, tokens: list[_Token]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def _next(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node:
        node = self._or("text")
        token = self.peek
        if token.kind == "RPAREN":
            raise RuleSyntaxError("unexpected ')'", token.column)
        if token.kind != "EOF":  # every other token starts or continues an expression
            raise RuleSyntaxError(f"unexpected {token.text}", token.column)
        return node

    def _or(self, field: str) -> Node:
        children = [self._and(field)]
        while self.peek.kind == "OR":
            operator = self._next()
            self._expect_operand(operator, _UNARY_START)
            children.append(self._and(field))
        return children[0] if len(children) == 1 else Or(tuple(children))

    def _and(self, field: str) -> Node:
        children = [self._unary(field)]
        while True:
            if self.peek.kind == "AND":
                operator = self._next()
                self._expect_operand(operator, _UNARY_START)
            elif self.peek.kind not in _UNARY_START:
                break
            children.append(self._unary(field))
        return children[0] if len(children) == 1 else And(tuple(children))

    def _unary(self, field: str) -> Node:
        token = self.peek
        if token.kind in ("NOT", "MINUS"):
            self._next()
            self._expect_operand(token, _UNARY_START)
            self._descend(token)
            child = self._unary(field)
            self.depth -= 1
            return Not(child)
        return self._near(field)

    def _near(self, field: str) -> Node:
        left_column = self.peek.column
        node = self._primary(field)
        while self.peek.kind == "NEAR":
            operator = self._next()
            self._expect_operand(operator, _PRIMARY_START)
            right_column = self.peek.column
            right = self._primary(field)
            _check_near_operand(node, left_column)
            _check_near_operand(right, right_column)
            node = Near(node, right, operator.distance)
        return node

    def _primary(self, field: str) -> Node:
        token = self.peek
        if token.kind == "FIELD":
            self._next()
            self._expect_operand(token, {"WORD", "PHRASE", "PREFIX", "REGEX", "LPAREN"})
            return self._primary(token.value)
        if token.kind in _TERM_KINDS:
            self._next()
            return Term(field, _TERM_KINDS[token.kind], token.value, token.column)
        if token.kind == "LPAREN":
            return self._group(field)
        raise _expected_term(token)

    def _group(self, field: str) -> Node:
        opening = self._next()
        if self.peek.kind == "RPAREN":
            raise RuleSyntaxError("empty parentheses: expected a term after '('", self.peek.column)
        self._descend(opening)
        node = self._or(field)
        self.depth -= 1
        closing = self.peek
        if closing.kind != "RPAREN":
            raise RuleSyntaxError(
                f"missing closing parenthesis for '(' at column {opening.column}", closing.column
            )
        self._next()
        return node

    def _descend(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise RuleSyntaxError(f"query nested more than {MAX_DEPTH} levels deep", token.column)

    def _expect_operand(self, operator: _Token, allowed: set[str]) -> None:
        """Fail unless the next token can start what must follow ``operator``."""
        token = self.peek
        if token.kind in allowed:
            return
        after = "-" if operator.kind == "MINUS" else operator.text
        after = f"'{after}'" if operator.kind in ("MINUS", "FIELD") else after
        if token.kind == "EOF":
            raise RuleSyntaxError(f"expected a term after {after}", token.column)
        if operator.kind == "FIELD" and token.kind in ("NOT", "MINUS"):
            raise RuleSyntaxError(
                f"a field cannot be negated from inside; write -{operator.text}term", token.column
            )
        raise RuleSyntaxError(f"expected a term after {after}, found {_describe(token)}", token.column)


def _expected_term(token: _Token) -> RuleSyntaxError:
    """The error for a token found where a term should start."""
    if token.kind == "RPAREN":
        return RuleSyntaxError("unexpected ')'", token.column)
    if token.kind == "EOF":
        return RuleSyntaxError("expected a term", token.column)
    return RuleSyntaxError(f"expected a term before {token.text}", token.column)


def _describe(token: _Token) -> str:
    if token.kind == "RPAREN":
        return "')'"
    return token.text


def _check_near_operand(node: Node, column: int) -> None:
    """NEAR compares word positions, so each side must be something with positions."""
    if isinstance(node, Term):
        if node.field == "site":
            raise RuleSyntaxError("site: has no word positions, so it cannot be used with NEAR", column)
        return
    if isinstance(node, (Or, Near)):
        for child in (node.children if isinstance(node, Or) else (node.left, node.right)):
            _check_near_operand(child, column)
        return
    raise RuleSyntaxError(
        "NEAR needs a term, phrase, prefix, regex or an OR-group on each side", column
    )
