"""Evaluating watch rules against items, with explanations.

A query's AST is compiled once, against the entity lexicon, into a small tree
of matchers. Matching an item asks of each candidate rule *whether* it matches
(booleans over its terms, noting which terms made it true), and only of a rule
that does, *why*: its hits, with offsets, made from those terms. A rule that
fails never causes a hit to be built.

What a rule sees of an item lives in ``rules.document``; the query language in
``rules.syntax``; the index that picks the candidate rules in ``rules.index``.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass, field
from functools import lru_cache

from monitor.items import KnownEntity
from monitor.rules.document import (
    ENTITY_TYPES,
    Document,
    Hit,
    Lexicon,
    PreparedDocument,
    _host_suffixes,
    _MentionView,
    _OneTerm,
    _order,
    _Span,
)
from monitor.rules.regex import compile_word_regex
from monitor.rules.syntax import And, Near, Node, Not, Or, Term, parse_query
from monitor.rules.text import WordPattern, fold_regex, normalize_host, words

# --- compiled rules, and what explains them ------------------------------------


@dataclass(frozen=True)
class CompiledRule:
    """A parsed rule. ``plan`` is its evaluation tree, built for one lexicon."""

    name: str
    query: str
    node: Node
    plan: _Plan | None = field(default=None, repr=False, compare=False)


def compile_rule(name: str, query: str, lexicon: Lexicon) -> CompiledRule:
    """Parse and compile a rule; raises RuleSyntaxError."""
    node = parse_query(query)
    return CompiledRule(name, query, node, _Plan(_compile(node, lexicon), lexicon))


def explain(rule: CompiledRule, doc: Document, lexicon: Lexicon) -> list[Hit] | None:
    """The hits that make ``rule`` match ``doc``, or None if it does not match.

    Only positive evidence is listed: a NOT clause that holds adds nothing, so a
    rule such as ``NOT sport`` can match with an empty list of hits.
    """
    prepared = PreparedDocument(doc, lexicon)
    root = _plan_for(rule, lexicon).root
    sources: list[_SpanMatcher] = []
    if not root.match(prepared, sources):
        return None
    return _hits(prepared, sources, _terms_are_distinct(root))


def _hits(doc: PreparedDocument, sources: list[_SpanMatcher], distinct: bool = False) -> list[Hit]:
    """The Hits an explanation lists, distinct and in reading order, from the
    terms and NEARs that made a rule true.

    ``distinct`` says no hit can come twice (no term repeats in the rule).
    """
    if len(sources) == 1:
        return sources[0].evidence(doc).hits()
    evidence = [pair for source in sources for pair in source.evidence(doc)]
    if distinct:
        return [hit for _, hit in sorted(evidence, key=_order)]
    unique: dict[tuple[int, str, str | None], tuple[int, Hit]] = {}
    for order, hit in evidence:
        unique.setdefault((order, hit.term, hit.entity), (order, hit))
    return [hit for _, hit in sorted(unique.values(), key=_order)]


# --- matchers: the compiled form of a query ------------------------------------


class _Matcher:
    """A compiled query node.

    Matchers declare ``__slots__``: a large rule set is tens of thousands of
    them, and without a dict each they take less memory and less cache.
    """

    __slots__ = ()

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        """Whether this node is true for the document.

        When it is, the terms and NEARs whose hits explain it have been appended
        to ``sources``; when it is not, ``sources`` may hold leftovers that the
        caller discards. Deciding this way builds no hits: a rule's hits are
        made from its sources only once the whole rule has matched.
        """
        raise NotImplementedError


class _SpanMatcher(_Matcher):
    """A node with positions: terms, NEAR, and OR-groups of those as NEAR operands.

    Its spans and evidence are computed once per document, kept under
    ``memo_key``: the node itself, or for a term a key it shares with every
    equal term of every other rule.
    """

    __slots__ = ("memo_key",)

    repeats = True  # whether its spans can repeat a hit (under NEAR one word pairs with several)

    def __init__(self) -> None:
        self.memo_key: object = self

    def spans(self, doc: PreparedDocument) -> list[_Span]:
        found = doc.spans.get(self.memo_key)
        if found is None:
            found = doc.spans[self.memo_key] = self._find(doc)
        return found

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        if self.spans(doc):
            sources.append(self)
            return True
        return False

    def evidence(self, doc: PreparedDocument) -> _OneTerm:
        """The hits of this node's spans in reading order (empty when it has none)."""
        found = doc.evidence.get(self.memo_key)
        if found is None:
            spans = self.spans(doc)
            found = doc.evidence_of(spans) if self.repeats else doc.term_evidence(spans)
            doc.evidence[self.memo_key] = found
        return found

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        raise NotImplementedError


class _TermMatcher(_SpanMatcher):
    """One term. A set of rules names the same people and places many times
    over, so equal terms share their result through one memo key."""

    __slots__ = ("label", "scope")

    repeats = False  # one term never finds the same place twice

    def __init__(self, term: Term):
        # A string, not a tuple: a string caches its hash, and this key is
        # looked up for every rule that names the term.
        self.memo_key = f"{term.field}\x1f{term.kind}\x1f{term.value}"
        self.label = term.label
        self.scope = term.field


class _TextTerm(_TermMatcher):
    """A word, phrase or prefix in token fields, plus the other names of a known name."""

    __slots__ = ("alternatives", "_needs")

    def __init__(self, term: Term, alternatives: list[tuple[WordPattern, str | None]]):
        super().__init__(term)
        self.alternatives = alternatives  # (pattern, entity it stands for); the literal first
        # Most terms are absent from most items, and set tests say so before
        # any position is looked at: a pattern needs all its exact words.
        self._needs = [(_exact_words(p), p, entity) for p, entity in alternatives]

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        present = doc.words_in(self.scope)
        candidates = [alternative for alternative in self._needs if present >= alternative[0]]
        if not candidates:
            return []
        found = []
        label = self.label
        for key, text in doc.texts(self.scope):
            words = text.postings.keys()
            starts, ends = text.tokens.starts, text.tokens.ends
            for needed, pattern, entity in candidates:
                if words >= needed:  # a phrase never spans two fields
                    for first, last in text.find(pattern):
                        found.append(_Span(key, first, last, starts[first], ends[last], label, entity))
        return _drop_contained(found) if len(found) > 1 and len(self._needs) > 1 else found


class _RegexTerm(_TermMatcher):
    """A regex that must match a whole folded token."""

    __slots__ = ("regex", "heads", "verdicts")

    def __init__(self, term: Term):
        super().__init__(term)
        self.regex = compile_word_regex(fold_regex(term.value))
        # The first three letters every matching word starts with, when the
        # pattern says (the index files the rule under them); otherwise every
        # word is tried, through what earlier items taught.
        self.heads = _regex_heads(self.regex.pattern)
        self.verdicts = None if self.heads else _verdicts_of(self.regex.source)

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        matching = self._matching_words(doc)
        if not matching:
            return []
        found = []
        for key, text in doc.texts(self.scope):
            starts, ends = text.tokens.starts, text.tokens.ends
            for word in matching:
                for p in text.postings.get(word, ()):
                    found.append(_Span(key, p, p, starts[p], ends[p], self.label))
        return found

    def _matching_words(self, doc: PreparedDocument) -> Set[str]:
        if self.verdicts is not None:
            return self.verdicts.matching(doc.words_in(self.scope))
        fullmatch = self.regex.fullmatch
        return {
            word
            for _, text in doc.texts(self.scope)
            for head in self.heads  # type: ignore[union-attr]
            for word in text.words_starting(head)
            if fullmatch(word)
        }


class _RegexVerdicts:
    """Which words one regex matches, remembered across documents.

    A regex without a literal start cannot be filed in the index, so it is
    tried on every item, against every word; but the words of news come back
    item after item, and a set lookup costs a fraction of a regex match. The
    memory only ever holds true verdicts, and forgets everything past ``LIMIT``
    words, which bounds what an unusual stream of words can take.
    """

    LIMIT = 20_000

    def __init__(self, pattern: str):
        self.fullmatch = compile_word_regex(pattern).fullmatch
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def matching(self, words: Set[str]) -> set[str]:
        """The words that the regex matches in full."""
        # Most words are known misses, so this one set operation leaves a few.
        maybe = words - self.unmatched
        found = self.matched.intersection(maybe)
        unseen = maybe - found
        if len(self.matched) + len(self.unmatched) + len(unseen) > self.LIMIT:
            self.matched.clear()
            self.unmatched.clear()
        for word in unseen:
            if self.fullmatch(word):
                found.add(word)
                self.matched.add(word)
            else:
                self.unmatched.add(word)
        return found


@lru_cache(maxsize=1024)
def _verdicts_of(pattern: str) -> _RegexVerdicts:
    """One memory per pattern, shared by every rule that uses it."""
    return _RegexVerdicts(pattern)


class _EntityTerm(_TermMatcher):
    """``person:``/``org:``/``place:``/``entity:`` against the item's mentions.

    When the value names a known entity of a fitting type, only mentions of that
    entity count (``person:Xi`` is Xi Jinping, never Xi Xiaoxing); otherwise any
    mention whose names contain the value as whole words does.
    """

    __slots__ = ("types", "regex", "pattern", "known", "_needs")

    def __init__(self, term: Term, lexicon: Lexicon):
        super().__init__(term)
        self.types = ENTITY_TYPES[term.field]
        self.regex = compile_word_regex(fold_regex(term.value)) if term.kind == "regex" else None
        self.pattern = None if self.regex else _pattern_of(term)
        self._needs = _exact_words(self.pattern) if self.pattern else frozenset()
        self.known: frozenset[KnownEntity] = frozenset()
        if self.pattern and not self.pattern.prefix:
            self.known = frozenset(
                e for e in lexicon.entities_with_words(self.pattern.words)
                if self.types is None or e.type in self.types
            )

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        types = self.types
        return [
            doc.mention_span(view, self.label)
            for view in self._candidates(doc)
            if types is None or view.mention.type in types
        ]

    def _candidates(self, doc: PreparedDocument) -> list[_MentionView]:
        """The mentions whose names fit, in document order (any type)."""
        if len(self.known) == 1:
            (entity,) = self.known
            return doc.mentions_of(entity)
        if self.known:
            return [view for view in doc.mentions if self.known & view.identities]
        if self.regex is not None:
            fullmatch = self.regex.fullmatch
            return [view for view in doc.mentions if any(fullmatch(w) for name in view.names for w in name)]
        pattern, needed = self.pattern, self._needs
        assert pattern is not None
        return [
            view for view in doc.mentions
            if view.words >= needed and any(pattern.occurs_in(name) for name in view.names)
        ]


class _SiteTerm(_TermMatcher):
    """``site:`` compares hostnames on dot boundaries: bbc.co.uk covers www.bbc.co.uk."""

    __slots__ = ("kind", "value", "regex")

    def __init__(self, term: Term):
        super().__init__(term)
        self.kind = term.kind
        self.value = normalize_host(term.value) if term.kind != "regex" else term.value
        self.regex = compile_word_regex(fold_regex(term.value)) if term.kind == "regex" else None

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        host = doc.host
        if host is None:
            return []
        name, start, end = host
        suffix = self._matching_suffix(name)
        if suffix is None:
            return []
        # Offsets follow the folded host; if folding changed its length, hit the whole host.
        begin = end - len(suffix) if len(name) == end - start else start
        return [_Span(("site", 0), -1, -1, begin, end, self.label)]

    def _matching_suffix(self, host: str) -> str | None:
        if self.regex is not None:
            return host if self.regex.fullmatch(host) else None
        for suffix in _host_suffixes(host):
            if suffix == self.value or (self.kind == "prefix" and suffix.startswith(self.value)):
                return suffix
        return None


class _AllOf(_Matcher):
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]):
        self.children = children

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        for child in self.children:
            if not child.match(doc, sources):
                return False
        return True


class _AnyOf(_Matcher):
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]):
        self.children = children

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        # Every branch is evaluated: the explanation lists all true ones.
        matched = False
        for child in self.children:
            mark = len(sources)
            if child.match(doc, sources):
                matched = True
            else:
                del sources[mark:]  # a false branch explains nothing
        return matched


class _NoneOf(_Matcher):
    __slots__ = ("child",)

    def __init__(self, child: _Matcher):
        self.child = child

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        return not self.child.match(doc, [])  # what it excludes is no evidence


class _SpanUnion(_SpanMatcher):
    """An OR-group used as a NEAR operand."""

    __slots__ = ("children",)

    def __init__(self, children: list[_SpanMatcher]):
        super().__init__()
        self.children = children

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        return [span for child in self.children for span in child.spans(doc)]


class _Near(_SpanMatcher):
    """Both operands in the same field with at most ``distance`` words between them."""

    __slots__ = ("left", "right", "distance")

    def __init__(self, left: _SpanMatcher, right: _SpanMatcher, distance: int):
        super().__init__()
        self.left, self.right, self.distance = left, right, distance

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        left = [s for s in self.left.spans(doc) if s.first >= 0]
        if not left:
            return []
        right = [s for s in self.right.spans(doc) if s.first >= 0]
        return [_joined(a, b) for a in left for b in right if self._close(a, b)]

    def _close(self, a: _Span, b: _Span) -> bool:
        if a.key != b.key:
            return False
        if a.last < b.first:
            return b.first - a.last - 1 <= self.distance
        if b.last < a.first:
            return a.first - b.last - 1 <= self.distance
        return False  # overlapping spans are one occurrence, not two near each other


def _joined(a: _Span, b: _Span) -> _Span:
    return _Span(
        a.key, min(a.first, b.first), max(a.last, b.last), min(a.start, b.start), max(a.end, b.end),
        a.term, parts=(a.parts or (a,)) + (b.parts or (b,)),
    )


def _terms_are_distinct(root: _Matcher) -> bool:
    """Whether no term occurs twice under ``root`` (then its hits cannot repeat)."""
    keys: list[object] = []
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, _TermMatcher):
            keys.append(node.memo_key)
        elif isinstance(node, _Near):
            return False  # one word can pair with several others
        elif isinstance(node, (_AllOf, _AnyOf, _SpanUnion)):
            pending.extend(node.children)
        elif isinstance(node, _NoneOf):
            continue  # contributes no hits
    return len(keys) == len(set(keys))


def _drop_contained(spans: list[_Span]) -> list[_Span]:
    """Keep the longest of nested hits of one term ("Vladimir Putin" over its "Putin")."""
    spans.sort(key=lambda s: (s.key, s.start, -s.end))
    kept: list[_Span] = []
    for span in spans:
        if kept and kept[-1].key == span.key and span.end <= kept[-1].end:
            continue
        kept.append(span)
    return kept


# --- compiling ---------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    root: _Matcher
    lexicon: Lexicon


def _plan_for(rule: CompiledRule, lexicon: Lexicon) -> _Plan:
    if rule.plan is not None and rule.plan.lexicon is lexicon:
        return rule.plan
    return _Plan(_compile(rule.node, lexicon), lexicon)


def _compile(node: Node, lexicon: Lexicon) -> _Matcher:
    if isinstance(node, Term):
        return _compile_term(node, lexicon)
    if isinstance(node, And):
        return _AllOf([_compile(child, lexicon) for child in node.children])
    if isinstance(node, Or):
        return _AnyOf([_compile(child, lexicon) for child in node.children])
    if isinstance(node, Not):
        return _NoneOf(_compile(node.child, lexicon))
    if isinstance(node, Near):
        return _compile_spans(node, lexicon)
    raise TypeError(f"not a query node: {node!r}")


def _compile_spans(node: Node, lexicon: Lexicon) -> _SpanMatcher:
    """Compile a NEAR operand (the parser has already checked its shape)."""
    if isinstance(node, Term):
        return _compile_term(node, lexicon)
    if isinstance(node, Or):
        return _SpanUnion([_compile_spans(child, lexicon) for child in node.children])
    if isinstance(node, Near):
        return _Near(_compile_spans(node.left, lexicon), _compile_spans(node.right, lexicon), node.distance)
    raise TypeError(f"NEAR operand must be a term, NEAR or OR-group: {node!r}")


def _compile_term(term: Term, lexicon: Lexicon) -> _TermMatcher:
    if term.field == "site":
        return _SiteTerm(term)
    if term.field in ENTITY_TYPES:
        return _EntityTerm(term, lexicon)
    if term.kind == "regex":
        return _RegexTerm(term)
    literal = _pattern_of(term)
    alternatives: list[tuple[WordPattern, str | None]] = [(literal, None)]
    if term.field in ("text", "title") and not literal.prefix:
        # A known name also finds the entity's other names written in the text.
        for entity in lexicon.entities_with_words(literal.words):
            for name in entity.names:
                pattern = WordPattern(words(name))
                if pattern.words and all(pattern != p for p, _ in alternatives):
                    alternatives.append((pattern, entity.name))
    return _TextTerm(term, alternatives)


def _pattern_of(term: Term) -> WordPattern:
    return WordPattern(words(term.value), prefix=term.kind == "prefix")


def _exact_words(pattern: WordPattern) -> frozenset[str]:
    """The words any occurrence of ``pattern`` contains in full (a prefix's
    unfinished last word is not one)."""
    return frozenset(pattern.words[:-1] if pattern.prefix else pattern.words)


# A regex's literal start: a regex term looks up only the words that begin with
# it, and the rule index files the rule under it.
_LEADING_GROUP = re.compile(r"\((?:\?:)?([^\W_]+(?:\|[^\W_]+)*)\)")


def _regex_heads(pattern: str) -> set[str] | None:
    """The first three letters a token must start with to match ``pattern``.

    Only the plain cases are understood: a literal start (``covid-?19``), or a
    group of literal alternatives then literals (``(ransom|mal)ware``). Anything
    else, or a start shorter than three letters, gives None.
    """
    group = _LEADING_GROUP.match(pattern)
    alternatives, rest = (group.group(1).split("|"), pattern[group.end() :]) if group else ([""], pattern)
    if _has_top_level_bar(rest):
        return None  # "abc|x" may match words that do not start with "abc"
    literal = ""
    for i, ch in enumerate(rest):
        if not ch.isalnum():
            break
        following = rest[i + 1 : i + 2]
        if following and following in "?*{":
            break  # this letter may be absent
        literal += ch
        if following == "+":
            break
    heads = {(alternative + literal)[:3].lower() for alternative in alternatives}
    return heads if all(len(head) == 3 for head in heads) else None


def _has_top_level_bar(pattern: str) -> bool:
    depth, in_class, escaped = 0, False, False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False
