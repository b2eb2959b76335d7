"""Checks of watch rules: ones that can never match, and ones history shows are off.

Static checks read only the query (and the entity lexicon, which decides what
a bare name matches). They are sound: a rule is reported as never matching
only when no item whatsoever could satisfy it. The reasoning works on the
query in negation normal form and looks, inside each AND, for a required term
that forces an excluded one (``A AND NOT A``, ``"peace talks" AND NOT talks``,
``title:x AND NOT x``, ``a NEAR/3 b AND NOT a NEAR/5 b``), for OR-groups all of
whose alternatives are excluded, and for NEARs whose sides live in different
fields. It is not complete: a contradiction it cannot see goes unreported.

History checks run every rule, and every term of every rule on its own, over
stored items once, through the same matcher the daemon uses:

- ``matches-almost-everything``: the rule matched more than a given share of
  the items (only judged when enough items were scanned);
- ``term-never-seen``: a term the rule looks for (one not under NOT) occurs
  in none of the items, which is often a typo;
- ``no-matches`` (info): the rule matched nothing. News is rare, so this is
  not a fault, but worth knowing before trusting the rule.

A static check also names regexes that RE2 runs in linear time but at a high
cost per character (``costly-regex``, see ``rules.regex.cost_warnings``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.rules.document import Document, Lexicon
from monitor.rules.evaluate import CompiledRule
from monitor.rules.index import RuleIndex
from monitor.rules.regex import cost_warnings
from monitor.rules.syntax import And, Near, Node, Not, Or, Term, terms_of
from monitor.rules.text import WordPattern, normalize_host, words

NEVER_MATCHES = "never-matches"
MATCHES_ALMOST_EVERYTHING = "matches-almost-everything"
TERM_NEVER_SEEN = "term-never-seen"
NO_MATCHES = "no-matches"
UNINDEXED = "unindexed"
COSTLY_REGEX = "costly-regex"

SEVERITY = {
    NEVER_MATCHES: "error",
    MATCHES_ALMOST_EVERYTHING: "warning",
    TERM_NEVER_SEEN: "warning",
    NO_MATCHES: "info",
    UNINDEXED: "info",
    COSTLY_REGEX: "warning",
}


@dataclass(frozen=True)
class Finding:
    """One problem with one rule. ``column`` (1-based) points into its query."""

    rule: str
    kind: str
    message: str
    column: int | None = None

    @property
    def severity(self) -> str:
        """``error`` (the rule is useless as written), ``warning`` or ``info``."""
        return SEVERITY.get(self.kind, "warning")

    def to_dict(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "column": self.column,
        }


def lint(
    rules: Sequence[CompiledRule],
    documents: Iterable[Document],
    lexicon: Lexicon,
    *,
    almost_all: float = 0.5,
    min_items: int = 50,
) -> list[Finding]:
    """Static and history findings for ``rules``, in rule order."""
    findings = [finding for rule in rules for finding in static_findings(rule, lexicon)]
    useless = {f.rule for f in findings if f.kind == NEVER_MATCHES}
    findings += [
        finding
        for finding in history_findings(rules, documents, lexicon, almost_all=almost_all, min_items=min_items)
        if not (finding.kind == NO_MATCHES and finding.rule in useless)  # already explained
    ]
    order: dict[str, int] = {}
    for position, rule in enumerate(rules):
        order.setdefault(rule.name, position)
    return sorted(findings, key=lambda f: order.get(f.rule, len(order)))  # stable: static first


# --- static -------------------------------------------------------------------


def static_findings(rule: CompiledRule, lexicon: Lexicon) -> list[Finding]:
    """What the query alone shows: whether it can ever match, whether it can be indexed.

    The lexicon is needed because a bare name also matches its entity's other
    names: ``"peace talks" AND NOT talks`` can match if "peace talks" is an
    alias of an entity also called "PTI".
    """
    findings = []
    conflict = _Contradictions(lexicon).of(_nnf(rule.node))
    if conflict is not None:
        findings.append(Finding(rule.name, NEVER_MATCHES, f"can never match: {conflict.reason}", conflict.column))
    elif RuleIndex([rule], lexicon).unindexed:  # worth saying only of a rule that can match
        findings.append(
            Finding(
                rule.name,
                UNINDEXED,
                "is evaluated on every item: no word or entity must occur for it to match "
                "(only NOT terms, or regexes and prefixes without three leading letters)",
            )
        )
    return findings + costly_regex_findings(rule)


def costly_regex_findings(rule: CompiledRule) -> list[Finding]:
    """The rule's regexes that are valid but costly to run, each at the column of the cause."""
    findings = []
    for term in terms_of(rule.node):
        if term.kind != "regex":
            continue
        for index, message in cost_warnings(term.value):
            # The value has each "\/" of the query unescaped to "/": one column more each.
            column = term.column + 1 + index + term.value[:index].count("/")
            findings.append(Finding(rule.name, COSTLY_REGEX, f"{term.label}: {message}", column))
    return findings


@dataclass(frozen=True)
class _Conflict:
    reason: str
    column: int


def _nnf(node: Node, negated: bool = False) -> Node:
    """The query with NOT pushed down to terms and NEARs; nested ANDs and ORs flattened."""
    if isinstance(node, Not):
        return _nnf(node.child, not negated)
    if isinstance(node, (And, Or)):
        # De Morgan: NOT (a AND b) is NOT a OR NOT b, and NOT (a OR b) is NOT a AND NOT b.
        kind: type[And] | type[Or] = Or if isinstance(node, Or) != negated else And
        children: list[Node] = []
        for child in node.children:
            converted = _nnf(child, negated)
            children.extend(converted.children if isinstance(converted, kind) else (converted,))
        return kind(tuple(children))
    return Not(node) if negated else node  # a term or a NEAR: atoms here


class _Contradictions:
    """Finds why a query in negation normal form can never be true, if it can see why."""

    def __init__(self, lexicon: Lexicon):
        self.lexicon = lexicon

    def of(self, node: Node, required: tuple[Node, ...] = (), excluded: tuple[Node, ...] = ()) -> _Conflict | None:
        """Why ``node`` cannot hold in an item that has every ``required`` atom and no ``excluded`` one."""
        if isinstance(node, Or):
            reasons = []
            for child in node.children:
                conflict = self.of(child, required, excluded)
                if conflict is None:
                    return None
                reasons.append(conflict)
            return _Conflict(
                f"every alternative of {_label(node)} is ruled out: "
                + "; ".join(c.reason for c in reasons),
                reasons[0].column,
            )
        positive, negative, groups = list(required), list(excluded), []
        pending = list(node.children if isinstance(node, And) else (node,))
        while pending:
            part = pending.pop(0)
            if isinstance(part, Not):
                negative.append(part.child)
            elif isinstance(part, Or):
                groups.append(part)
            elif isinstance(part, And):
                pending.extend(part.children)
            else:
                positive.append(part)
                if isinstance(part, Near):
                    pending.extend((part.left, part.right))  # a NEAR holds only where both sides occur
        for atom in positive:
            if isinstance(atom, Near):
                conflict = _near_fields_conflict(atom)
                if conflict is not None:
                    return conflict
            for other in negative:
                if self.implies(atom, other):
                    return _Conflict(_exclusion_reason(atom, other), _column(other))
        for group in groups:
            conflict = self.of(group, tuple(positive), tuple(negative))
            if conflict is not None:
                return conflict
        return None

    def implies(self, a: Node, b: Node) -> bool:
        """Whether every item that matches atom ``a`` also matches atom ``b``."""
        if isinstance(a, Near) and isinstance(b, Near):
            return _sides(a) == _sides(b) and a.distance <= b.distance
        if not (isinstance(a, Term) and isinstance(b, Term)):
            return False
        if _identity(a) == _identity(b):
            return True
        if not (_is_text_term(a) and _is_text_term(b)) or not _SCOPES[a.field] <= _SCOPES[b.field]:
            return False
        inner = self._alternatives(b)
        return all(any(_always_contains(outer, pattern) for pattern in inner) for outer in self._alternatives(a))

    def _alternatives(self, term: Term) -> list[WordPattern]:
        """What a word, phrase or prefix matches: itself, and the other names of a known name.

        Mirrors how rules.evaluate compiles text terms; keep the two in step.
        """
        literal = WordPattern(words(term.value), prefix=term.kind == "prefix")
        found = [literal]
        if term.field in ("text", "title") and not literal.prefix:
            for entity in self.lexicon.entities_with_words(literal.words):
                found += [WordPattern(words(name)) for name in entity.names if words(name)]
        return found


# Which field strings each scope searches; NEAR pairs positions within one of them.
_SCOPES = {
    "text": frozenset({"title", "body"}),
    "title": frozenset({"title"}),
    "author": frozenset({"author"}),
    "feed": frozenset({"feed"}),
    "tag": frozenset({"tag"}),
    "site": frozenset({"link"}),
    # Entity mentions are found in the title and the body.
    "person": frozenset({"title", "body"}),
    "org": frozenset({"title", "body"}),
    "place": frozenset({"title", "body"}),
    "entity": frozenset({"title", "body"}),
}


def _is_text_term(term: Term) -> bool:
    return term.kind != "regex" and term.field in ("text", "title", "author", "feed", "tag")


def _identity(term: Term) -> tuple[str, str, object]:
    """Equal for terms that match exactly the same items (``Putin`` and ``putin``)."""
    if term.kind == "regex":
        return (term.field, "regex", term.value)
    if term.field == "site":
        return ("site", term.kind, normalize_host(term.value))
    return (term.field, "prefix" if term.kind == "prefix" else "words", words(term.value))


def _always_contains(outer: WordPattern, inner: WordPattern) -> bool:
    """Whether every run of words that ``outer`` matches contains a run ``inner`` matches."""
    n, k = len(outer.words), len(inner.words)
    for start in range(n - k + 1):
        for j, wanted in enumerate(inner.words):
            word = outer.words[start + j]
            word_is_prefix = outer.prefix and start + j == n - 1
            if inner.prefix and j == k - 1:
                ok = word.startswith(wanted)  # the item's word starts with ``word``, so with ``wanted``
            else:
                ok = not word_is_prefix and word == wanted
            if not ok:
                break
        else:
            return True
    return False


def _sides(near: Near) -> frozenset[object]:
    """A NEAR's two sides, in either order (NEAR is symmetric)."""
    return frozenset({_shape(near.left), _shape(near.right)})


def _shape(node: Node) -> object:
    """A NEAR operand, comparable for meaning: columns, case and OR order ignored."""
    if isinstance(node, Term):
        return _identity(node)
    if isinstance(node, Or):
        return ("or", frozenset(_shape(child) for child in node.children))
    if isinstance(node, Near):
        return ("near", _sides(node), node.distance)
    raise TypeError(f"not a NEAR operand: {node!r}")


def _fields(node: Node) -> frozenset[str]:
    """The field strings in which a NEAR operand can have positions."""
    if isinstance(node, Term):
        return _SCOPES[node.field]
    if isinstance(node, Or):
        return frozenset().union(*(_fields(child) for child in node.children))
    if isinstance(node, Near):
        return _fields(node.left) & _fields(node.right)
    return frozenset()


def _near_fields_conflict(near: Near) -> _Conflict | None:
    left, right = _fields(near.left), _fields(near.right)
    if left & right:
        return None
    return _Conflict(
        f"{_label(near)} compares word positions within one field, but "
        f"{_label(near.left)} is looked for in {_describe_fields(left)} "
        f"and {_label(near.right)} in {_describe_fields(right)}",
        _column(near),
    )


def _describe_fields(fields: frozenset[str]) -> str:
    return " and ".join(sorted(fields)) if fields else "no single field"


def _exclusion_reason(required: Node, excluded: Node) -> str:
    if isinstance(required, Term) and isinstance(excluded, Term) and _identity(required) == _identity(excluded):
        same = "it" if required.label == excluded.label else f"the same term as {excluded.label}"
        return f"it requires {required.label} and excludes {same} (NOT {excluded.label})"
    return (
        f"it requires {_label(required)} but excludes {_label(excluded)}, "
        f"and every item with {_label(required)} also has {_label(excluded)}"
    )


def _column(node: Node) -> int:
    return terms_of(node)[0].column


def _label(node: Node) -> str:
    """A node written back as query text."""
    if isinstance(node, Term):
        return node.label
    if isinstance(node, Not):
        return f"NOT {_label(node.child)}"
    if isinstance(node, Near):
        return f"{_label(node.left)} NEAR/{node.distance} {_label(node.right)}"
    if isinstance(node, (And, Or)):
        operator = " AND " if isinstance(node, And) else " OR "
        return "(" + operator.join(_label(child) for child in node.children) + ")"
    raise TypeError(f"not a query node: {node!r}")


# --- history ------------------------------------------------------------------


def history_findings(
    rules: Sequence[CompiledRule],
    documents: Iterable[Document],
    lexicon: Lexicon,
    *,
    almost_all: float = 0.5,
    min_items: int = 50,
) -> list[Finding]:
    """What one pass over stored items shows about each rule, in rule order.

    ``documents`` are the stored items as rules see them (build them as the
    pipeline does, feed tags included). Every rule and every term it looks for is
    evaluated through one RuleIndex, so an item is analysed once.
    """
    term_rules: dict[str, CompiledRule] = {}
    positive_terms: list[list[Term]] = []
    for rule in rules:
        terms = _positive_terms(rule.node)
        positive_terms.append(terms)
        for term in terms:
            # A term is its own rule; the label says what it matches, so it names it.
            term_rules.setdefault(term.label, CompiledRule(term.label, term.label, term))
    index = RuleIndex([*rules, *term_rules.values()], lexicon)
    slot = {id(rule): i for i, rule in enumerate(index.rules)}
    counts = [0] * len(index.rules)
    scanned = 0
    for document in documents:
        scanned += 1
        for rule, _ in index.match(document):
            counts[slot[id(rule)]] += 1
    if scanned == 0:
        return []

    findings = []
    for position, rule in enumerate(rules):
        matched = counts[position]
        if matched == 0:
            findings.append(Finding(rule.name, NO_MATCHES, f"matched none of the {scanned:,} stored items"))
        elif scanned >= min_items and matched > almost_all * scanned:
            findings.append(
                Finding(
                    rule.name,
                    MATCHES_ALMOST_EVERYTHING,
                    f"matched {matched:,} of {scanned:,} stored items ({matched / scanned:.0%}); "
                    "it would alert on almost everything, so narrow it",
                )
            )
        reported: set[str] = set()
        for term in positive_terms[position]:
            if counts[slot[id(term_rules[term.label])]] == 0 and term.label not in reported:
                reported.add(term.label)
                findings.append(
                    Finding(
                        rule.name,
                        TERM_NEVER_SEEN,
                        f"{term.label} (column {term.column}) {_NEVER_SEEN[term.field]} "
                        f"the {scanned:,} stored items; check the spelling",
                        term.column,
                    )
                )
    return findings


def _positive_terms(node: Node, negated: bool = False) -> list[Term]:
    """The terms a rule looks for, as opposed to excludes: those under an even number of NOTs."""
    if isinstance(node, Term):
        return [] if negated else [node]
    if isinstance(node, Not):
        return _positive_terms(node.child, not negated)
    if isinstance(node, Near):
        return [] if negated else terms_of(node)
    if isinstance(node, (And, Or)):
        return [term for child in node.children for term in _positive_terms(child, negated)]
    return []


_NEVER_SEEN = {
    "text": "occurs in no title or text of",
    "title": "occurs in no title of",
    "author": "matches no author of",
    "feed": "matches no feed name of",
    "tag": "matches no tag of",
    "site": "matches no link of",
    "person": "matches no person mentioned in",
    "org": "matches no organisation mentioned in",
    "place": "matches no place mentioned in",
    "entity": "matches no entity mentioned in",
}
