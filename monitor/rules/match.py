"""Evaluating watch rules against items, with explanations, and the rule index.

A query's AST is compiled once, against the entity lexicon, into a small tree
of matchers. Matching an item asks of each candidate rule *whether* it matches
(booleans over its terms, noting which terms made it true), and only of a rule
that does, *why*: its hits, with offsets, made from those terms. A rule that
fails never causes a hit to be built.

An item is analysed at most once per match call (``PreparedDocument``), and
only as far as the rules evaluated on it ask: a field is tokenized when a rule
or the index first reads it, a mention gets token positions when a term finds
it. Every term's result, and its hits, are kept for the rest of the call under
a key shared by every rule that names the same term, so a word is looked up
once per item however many rules contain it.

``RuleIndex`` is the presearcher: it files each rule under the words or
entities an item must contain for the rule to have any chance, so an item is
only evaluated against the rules whose keys it carries, plus the few that
cannot be filed (pure negations, regexes, very short prefixes), which are
evaluated every time.

Word-level semantics (tokens, folding, possessives) live in ``rules.text``;
the query language in ``rules.syntax``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from monitor.items import Item, KnownEntity, Mention
from monitor.rules.syntax import And, Near, Node, Not, Or, Term, parse_query
from monitor.rules.text import (
    IndexedText,
    WordPattern,
    fold,
    fold_regex,
    hostname_span,
    normalize_host,
    words,
)

# Hits are listed in reading order of an alert: headline first.
FIELD_ORDER = {"title": 0, "body": 1, "author": 2, "feed": 3, "tag": 4, "site": 5}

# Which spaCy labels each entity scope accepts; None accepts every label.
ENTITY_TYPES: dict[str, frozenset[str] | None] = {
    "person": frozenset({"PERSON"}),
    "org": frozenset({"ORG"}),
    "place": frozenset({"GPE", "LOC"}),
    "entity": None,
}

# The Document strings each text scope reads; "tag" reads every tag separately.
_SCOPE_FIELDS = {"text": ("title", "body"), "title": ("title",), "author": ("author",), "feed": ("feed",)}

FieldKey = tuple[str, int]  # ("title", 0), ("body", 0), ("tag", 2), ("site", 0)


# --- what a rule sees, and what it says back ---------------------------------


@dataclass(frozen=True)
class Document:
    """What a rule sees of an item."""

    title: str
    body: str
    author: str = ""
    feed: str = ""
    tags: tuple[str, ...] = ()
    link: str = ""  # site: derives the hostname from this
    mentions: tuple[Mention, ...] = ()

    @classmethod
    def from_item(
        cls, item: Item, feed: str = "", mentions: Iterable[Mention] = (), feed_tags: Iterable[str] = ()
    ) -> Document:
        """An item as rules see it; ``tag:`` matches the item's tags and its feed's."""
        return cls(
            title=item.title,
            body=item.text,
            author=item.author or "",
            feed=feed,
            tags=(*item.tags, *feed_tags),
            link=item.link or "",
            mentions=tuple(mentions),
        )


@dataclass(frozen=True, slots=True)
class Hit:
    """One reason a rule matched.

    ``start``/``end`` are character offsets into the Document string named by
    ``field`` (``title``, ``body``, ``author``, ``feed``; ``tags[index]`` for
    ``tag``; ``link`` for ``site``), so ``string[start:end] == matched``.
    """

    term: str
    field: str
    start: int
    end: int
    matched: str
    entity: str | None = None
    index: int | None = None  # which tag, for field "tag"

    def to_dict(self) -> dict[str, object]:
        return {
            "term": self.term,
            "field": self.field,
            "start": self.start,
            "end": self.end,
            "matched": self.matched,
            "entity": self.entity,
            "index": self.index,
        }


class _MentionNames(NamedTuple):
    """The folded names a mention answers to, and the known entities it denotes."""

    names: tuple[tuple[str, ...], ...]
    identities: frozenset[KnownEntity]
    words: frozenset[str]  # every word of those names


class Lexicon:
    """entities.yaml as lookups; names are compared by their folded words."""

    def __init__(self, entities: Sequence[KnownEntity] = ()):
        self.entities = tuple(entities)
        by_words: dict[tuple[str, ...], list[KnownEntity]] = {}
        for entity in self.entities:
            for name in entity.names:
                key = words(name)
                if key and entity not in by_words.setdefault(key, []):
                    by_words[key].append(entity)
        self._by_words = {key: tuple(found) for key, found in by_words.items()}
        self._mention_names: dict[tuple[str, str], _MentionNames] = {}

    @classmethod
    def from_entities(cls, entities: Sequence[KnownEntity]) -> Lexicon:
        return cls(entities)

    def entities_named(self, name: str) -> tuple[KnownEntity, ...]:
        """Every known entity that has ``name`` as its name or an alias."""
        return self.entities_with_words(words(name))

    def entities_with_words(self, key: tuple[str, ...]) -> tuple[KnownEntity, ...]:
        return self._by_words.get(key, ())

    def canonical_of(self, name: str) -> KnownEntity | None:
        """The (first) known entity called ``name``, or None."""
        found = self.entities_named(name)
        return found[0] if found else None

    def names_of(self, canonical: str) -> tuple[str, ...]:
        """All names of the entity called ``canonical``; just ``canonical`` if unknown."""
        entity = self.canonical_of(canonical)
        return entity.names if entity else (canonical,)

    def mention_names(self, canonical: str, text: str) -> _MentionNames:
        """The folded names a mention answers to, and the known entities it denotes.

        Cached: the same mentions come back in item after item.
        """
        found = self._mention_names.get((canonical, text))
        if found is None:
            if len(self._mention_names) >= 100_000:
                self._mention_names.clear()
            identities = frozenset(self.entities_named(canonical))
            names = {words(canonical), words(text)}
            names.update(words(name) for entity in identities for name in entity.names)
            names.discard(())
            every_word = frozenset(word for name in names for word in name)
            found = self._mention_names[(canonical, text)] = _MentionNames(tuple(names), identities, every_word)
        return found


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


# --- evidence: spans and hits ---------------------------------------------------


class _Span(NamedTuple):
    """Where a term occurred: token positions (for NEAR) and character offsets (for hits)."""

    key: FieldKey
    first: int  # token positions; -1 when unknown (site, or a mention off token bounds)
    last: int
    start: int
    end: int
    term: str
    entity: str | None = None
    text: str | None = None  # the matched text when the field string cannot supply it
    parts: tuple[_Span, ...] = ()  # a NEAR span is made of its operands' spans


class _OneTerm(list):  # type: ignore[type-arg]
    """Evidence from one source (a term or a NEAR): (reading order, Hit) pairs,
    in reading order, no duplicates.

    One term's evidence is computed once per document and shared by every rule
    that names the term, so it is never modified: combining evidence always
    builds a new list. It also keeps its bare list of hits once made: every
    rule explained by this source alone (``Putin``, ``Putin AND NOT sport``)
    gets a copy of that list.
    """

    __slots__ = ("_hits",)

    def __init__(self, pairs: Iterable[tuple[int, Hit]] = ()):
        super().__init__(pairs)
        self._hits: list[Hit] | None = None

    def hits(self) -> list[Hit]:
        """The hits, as a new list the caller may keep."""
        if self._hits is None:
            self._hits = [hit for _, hit in self]
        return self._hits.copy()


_order = itemgetter(0)


def _reading_order(field_name: str, index: int, start: int, end: int) -> int:
    """One integer that sorts hits by field, tag, start, end (cheaper than tuples)."""
    return (((FIELD_ORDER.get(field_name, 9) << 32 | index) << 32 | start) << 32) | end


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


# --- one document, analysed once ----------------------------------------------


@dataclass(frozen=True, slots=True)
class _MentionView:
    mention: Mention
    key: FieldKey
    names: tuple[tuple[str, ...], ...]  # folded words of canonical, text and known aliases
    identities: frozenset[KnownEntity]  # the known entities its canonical name denotes
    words: frozenset[str]  # every word of those names
    text: str | None  # the mention's own text when its offsets do not fit its field


class PreparedDocument:
    """A Document analysed for matching; each part is computed on first use, once.

    ``spans`` and ``evidence`` keep, for the length of one match call, what each
    term (or NEAR) found, under the term's memo key: rules that share a term
    share its result.
    """

    def __init__(self, doc: Document, lexicon: Lexicon):
        self.doc = doc
        self.lexicon = lexicon
        self._texts: dict[FieldKey, IndexedText] = {}
        self._scopes: dict[str, tuple[tuple[FieldKey, IndexedText], ...]] = {}
        self._scope_words: dict[str, Set[str]] = {}
        self._mentions: list[_MentionView] | None = None
        self._mentions_by_entity: dict[KnownEntity, list[_MentionView]] | None = None
        self._host: tuple[str, int, int] | None | bool = False  # False: not computed yet
        self._index_words: dict[str, Set[str]] = {}
        self._fields: dict[FieldKey, tuple[str, int, str, int | None]] = {}
        self.spans: dict[object, list[_Span]] = {}
        self.evidence: dict[object, _OneTerm] = {}

    # -- fields --

    def string(self, key: FieldKey) -> str:
        name, index = key
        if name == "tag":
            return self.doc.tags[index]
        if name == "site":
            return self.doc.link
        return getattr(self.doc, name)  # type: ignore[no-any-return]

    def text(self, key: FieldKey) -> IndexedText:
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = IndexedText(self.string(key))
        return found

    def texts(self, scope: str) -> tuple[tuple[FieldKey, IndexedText], ...]:
        """The field strings a text scope reads in this document, analysed."""
        found = self._scopes.get(scope)
        if found is None:
            if scope == "tag":
                keys = [("tag", i) for i in range(len(self.doc.tags))]
            else:
                keys = [(name, 0) for name in _SCOPE_FIELDS[scope]]
            found = self._scopes[scope] = tuple((key, self.text(key)) for key in keys)
        return found

    def words_in(self, scope: str) -> Set[str]:
        """The distinct folded words of a text scope: one set lookup tells a
        term that it is absent, which is what most terms are in most items."""
        found = self._scope_words.get(scope)
        if found is None:
            texts = self.texts(scope)
            if len(texts) == 1:
                found = texts[0][1].postings.keys()
            else:
                found = set().union(*(text.postings for _, text in texts))
            self._scope_words[scope] = found
        return found

    # -- mentions --

    @property
    def mentions(self) -> list[_MentionView]:
        if self._mentions is None:
            self._mentions = [self._view(m) for m in self.doc.mentions]
        return self._mentions

    def mentions_of(self, entity: KnownEntity) -> list[_MentionView]:
        """The mentions of one known entity, in document order."""
        if self._mentions_by_entity is None:
            by_entity: dict[KnownEntity, list[_MentionView]] = {}
            for view in self.mentions:
                for known in view.identities:
                    by_entity.setdefault(known, []).append(view)
            self._mentions_by_entity = by_entity
        return self._mentions_by_entity.get(entity, [])

    def _view(self, mention: Mention) -> _MentionView:
        names, identities, every_word = self.lexicon.mention_names(mention.canonical, mention.text)
        key: FieldKey = (mention.field, 0)
        fits = mention.field in ("title", "body") and 0 <= mention.start < mention.end <= len(self.string(key))
        return _MentionView(mention, key, names, identities, every_word, None if fits else mention.text)

    def mention_span(self, view: _MentionView, term: str) -> _Span:
        """A mention as a span of ``term``, with token positions when it fits its field."""
        mention = view.mention
        first = last = -1
        if view.text is None:
            first, last = self.text(view.key).positions_of(mention.start, mention.end)
        return _Span(view.key, first, last, mention.start, mention.end, term, mention.canonical, view.text)

    # -- link --

    @property
    def host(self) -> tuple[str, int, int] | None:
        """The folded hostname of the link and its offsets in the link."""
        if self._host is False:
            span = hostname_span(self.doc.link)
            self._host = None
            if span:
                host = fold(self.doc.link[span[0] : span[1]])
                if host.endswith("."):
                    host, span = host[:-1], (span[0], span[1] - 1)
                self._host = (host, *span) if host else None
        return self._host  # type: ignore[return-value]

    # -- what the rule index reads --

    def index_words(self, namespace: str) -> Set[str]:
        """The words this document offers to the rule index in one namespace."""
        found = self._index_words.get(namespace)
        if found is None:
            found = self._index_words[namespace] = self._collect_index_words(namespace)
        return found

    def _collect_index_words(self, namespace: str) -> Set[str]:
        if namespace.endswith("*"):
            # A prefix rule is filed under its first three letters (shorter
            # heads of shorter words are harmless: no key is that short).
            return set(map(_first_three, self.index_words(namespace[:-1])))
        if namespace == "ent":
            return set().union(*(view.words for view in self.mentions))
        if namespace == "known":
            return {entity.name for view in self.mentions for entity in view.identities}
        if namespace == "site":
            host = self.host
            return set(_host_suffixes(host[0])) if host else set()
        return self.words_in(namespace)

    # -- hits --

    def evidence_of(self, spans: Iterable[_Span]) -> _OneTerm:
        """Spans (NEAR spans by their operands) as hits in reading order.

        Repeats are dropped: under NEAR one word can pair with several others.
        """
        unique: dict[tuple[FieldKey, int, int, str, str | None], _Span] = {}
        for span in spans:
            for leaf in span.parts or (span,):
                unique.setdefault((leaf.key, leaf.start, leaf.end, leaf.term, leaf.entity), leaf)
        return self.term_evidence(unique.values())

    def term_evidence(self, spans: Iterable[_Span]) -> _OneTerm:
        """One term's spans (which never repeat) as hits in reading order."""
        evidence = _OneTerm()
        fields = self._fields
        for key, _, _, start, end, term, entity, text, _ in spans:
            found = fields.get(key)
            if found is None:
                found = fields[key] = self._field(key)
            string, base, name, index = found
            matched = string[start:end] if text is None else text
            evidence.append((base | start << 32 | end, Hit(term, name, start, end, matched, entity, index)))
        evidence.sort(key=_order)
        return evidence

    def _field(self, key: FieldKey) -> tuple[str, int, str, int | None]:
        """What every hit in one field string shares: the string, the high bits
        of the reading order, and the Hit's field name and tag index."""
        name, index = key
        base = _reading_order(name, index, 0, 0)
        return self.string(key), base, name, index if name == "tag" else None


_first_three = itemgetter(slice(3))


def _host_suffixes(host: str) -> list[str]:
    """``www.bbc.co.uk`` -> ``www.bbc.co.uk``, ``bbc.co.uk``, ``co.uk``, ``uk``."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


# --- matchers: the compiled form of a query ------------------------------------

# What the index knows of a rule: the item must carry every key of at least one
# clause. A key is (namespace, word): "text" words of title and body, "title",
# "author", "feed" and "tag" words of those fields, "ent" words of mention
# names, "known" canonical names of known entities, "site" host suffixes;
# "<namespace>*" holds the first three letters of words, for prefixes.
# None: nothing can be said (NOT sport).
Key = tuple[str, str]
Clause = frozenset[Key]
Requirement = frozenset[Clause] | None


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

    def requirement(self) -> Requirement:
        """What any document this node matches must carry, for the index."""
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

    def requirement(self) -> Requirement:
        return _any_of(_pattern_requirement(self.scope, pattern) for pattern, _ in self.alternatives)


class _RegexTerm(_TermMatcher):
    """A regex that must match a whole folded token."""

    __slots__ = ("regex", "heads", "verdicts")

    def __init__(self, term: Term):
        super().__init__(term)
        self.regex = re.compile(fold_regex(term.value), re.IGNORECASE)
        # The first three letters every matching word starts with, when the
        # pattern says (the index files the rule under them); otherwise every
        # word is tried, through what earlier items taught.
        self.heads = _regex_heads(self.regex.pattern)
        self.verdicts = None if self.heads else _verdicts_of(self.regex.pattern)

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

    def requirement(self) -> Requirement:
        return _regex_requirement(self.scope, self.regex.pattern)


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
        self.fullmatch = re.compile(pattern, re.IGNORECASE).fullmatch
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
        self.regex = re.compile(fold_regex(term.value), re.IGNORECASE) if term.kind == "regex" else None
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

    def requirement(self) -> Requirement:
        if self.known:
            return frozenset(frozenset({("known", entity.name)}) for entity in self.known)
        if self.regex is not None:
            return _regex_requirement("ent", self.regex.pattern)
        return _pattern_requirement("ent", self.pattern)  # type: ignore[arg-type]


class _SiteTerm(_TermMatcher):
    """``site:`` compares hostnames on dot boundaries: bbc.co.uk covers www.bbc.co.uk."""

    __slots__ = ("kind", "value", "regex")

    def __init__(self, term: Term):
        super().__init__(term)
        self.kind = term.kind
        self.value = normalize_host(term.value) if term.kind != "regex" else term.value
        self.regex = re.compile(fold_regex(term.value), re.IGNORECASE) if term.kind == "regex" else None

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

    def requirement(self) -> Requirement:
        if self.kind == "regex":
            return None
        if self.kind == "prefix":
            return _clauses(("site*", self.value[:3])) if len(self.value) >= 3 else None
        return _clauses(("site", self.value))


class _AllOf(_Matcher):
    __slots__ = ("children",)

    def __init__(self, children: list[_Matcher]):
        self.children = children

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        for child in self.children:
            if not child.match(doc, sources):
                return False
        return True

    def requirement(self) -> Requirement:
        return _all_of(child.requirement() for child in self.children)


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

    def requirement(self) -> Requirement:
        return _any_of(child.requirement() for child in self.children)


class _NoneOf(_Matcher):
    __slots__ = ("child",)

    def __init__(self, child: _Matcher):
        self.child = child

    def match(self, doc: PreparedDocument, sources: list[_SpanMatcher]) -> bool:
        return not self.child.match(doc, [])  # what it excludes is no evidence

    def requirement(self) -> Requirement:
        return None


class _SpanUnion(_SpanMatcher):
    """An OR-group used as a NEAR operand."""

    __slots__ = ("children",)

    def __init__(self, children: list[_SpanMatcher]):
        super().__init__()
        self.children = children

    def _find(self, doc: PreparedDocument) -> list[_Span]:
        return [span for child in self.children for span in child.spans(doc)]

    def requirement(self) -> Requirement:
        return _any_of(child.requirement() for child in self.children)


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

    def requirement(self) -> Requirement:
        return _all_of([self.left.requirement(), self.right.requirement()])


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


# --- index keys ----------------------------------------------------------------

# Words too common to be a good anchor when a clause offers a better one.
_STOPWORDS = frozenset(
    "a an and are as at be by de del der des di du el en for from has he in is it la le "
    "los of on or that the to was were will with".split()
)


# Beyond this many clauses an AND stops combining its children's clauses; the
# requirement stays correct, only less selective.
_MAX_CLAUSES = 16


def _clauses(*keys: Key) -> Requirement:
    """One clause of the given keys."""
    return frozenset({frozenset(keys)})


def _pattern_requirement(namespace: str, pattern: WordPattern) -> Requirement:
    """Every exact word of a phrase; a trailing prefix by its first three letters."""
    exact = pattern.words[:-1] if pattern.prefix else pattern.words
    keys = [(namespace, word) for word in exact]
    head = pattern.words[-1]
    if pattern.prefix and len(head) >= 3:
        keys.append((namespace + "*", head[:3]))
    return _clauses(*keys) if keys else None


def _regex_requirement(namespace: str, pattern: str) -> Requirement:
    heads = _regex_heads(pattern)
    if heads is None:
        return None
    return frozenset(frozenset({(namespace + "*", head)}) for head in heads)


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


def _any_of(requirements: Iterable[Requirement]) -> Requirement:
    """For OR: every branch must be indexable; any branch's clauses admit the item."""
    clauses: set[Clause] = set()
    for requirement in requirements:
        if requirement is None:
            return None
        clauses |= requirement
    return _minimal(clauses)


def _all_of(requirements: Iterable[Requirement]) -> Requirement:
    """For AND: one clause from each indexable child, all together."""
    usable = sorted((r for r in requirements if r is not None), key=len)
    if not usable:
        return None
    combined: set[Clause] = set(usable[0])
    for requirement in usable[1:]:
        product = {a | b for a in combined for b in requirement}
        if len(product) > _MAX_CLAUSES:
            break
        combined = product
    return _minimal(combined)


def _minimal(clauses: set[Clause]) -> Requirement:
    """Drop clauses that contain another clause: the smaller one already admits the item."""
    ordered = sorted(clauses, key=len)
    kept: list[Clause] = []
    for clause in ordered:
        if not any(smaller <= clause for smaller in kept):
            kept.append(clause)
    return frozenset(kept)


def _by_selectivity(clause: Clause) -> list[Key]:
    """The keys of a clause, the one fewest items should carry first."""

    def cost(key: Key) -> tuple[int, int]:
        namespace, word = key
        if namespace == "known":
            rank = 0
        elif namespace.endswith("*"):
            rank = 3
        elif word in _STOPWORDS:
            rank = 4
        else:
            rank = 1 if len(word) > 3 else 2
        return rank, -len(word)

    return sorted(sorted(clause), key=cost)


# --- the presearcher ------------------------------------------------------------


class _Offered(dict[str, Set[str]]):
    """The words a document offers to the index, per namespace, read on demand."""

    def __init__(self, doc: PreparedDocument):
        super().__init__()
        self.doc = doc

    def __missing__(self, namespace: str) -> Set[str]:
        found = self[namespace] = self.doc.index_words(namespace)
        return found


class _Filed:
    """The queries filed under one anchor key.

    A clause of one key is complete with the anchor. A longer clause is filed
    again under its second key, so that an item finds the clauses it completes
    by intersecting its words with those second keys: the few words of a
    popular anchor ("ceasefire") would otherwise each bring hundreds of clauses
    to check one by one. Keys beyond the second, rare, are checked one by one.
    """

    __slots__ = ("alone", "by_second")

    def __init__(self) -> None:
        self.alone: list[int] = []
        # second key's namespace -> its word -> [(remaining keys, queries)]
        self.by_second: dict[str, dict[str, list[tuple[tuple[Key, ...], list[int]]]]] = {}

    def add(self, query: int, others: list[Key]) -> None:
        """File ``query`` for a clause of the anchor and ``others``, most selective first."""
        if not others:
            self.alone.append(query)
            return
        (namespace, word), *rest = others
        filings = self.by_second.setdefault(namespace, {}).setdefault(word, [])
        for keys, queries in filings:
            if keys == tuple(rest):
                queries.append(query)
                return
        filings.append((tuple(rest), [query]))

    def completed(self, offered: _Offered, found: set[int]) -> None:
        """Add to ``found`` the queries of the clauses an item that carries the
        anchor completes."""
        found.update(self.alone)
        for namespace, by_word in self.by_second.items():
            for word in by_word.keys() & offered[namespace]:
                for rest, queries in by_word[word]:
                    for other_namespace, other_word in rest:
                        if other_word not in offered[other_namespace]:
                            break
                    else:
                        found.update(queries)


class RuleIndex:
    """Presearcher: indexes rules by the tokens/entities they require (as Lucene
    Monitor / the ES percolator do), so matching an item costs ~candidates, not
    all rules. Rules whose requirements can't be indexed (pure negations,
    regexes, prefixes without a usable literal) are always evaluated.

    Rules with the same query share one *query* (evaluated once per item), and
    the index files queries, not rules. Each clause of a query's requirement is
    filed under its most selective key, its anchor (see ``_Filed``); an item
    makes the query a candidate when it carries every key of some clause.
    """

    def __init__(self, rules: Sequence[CompiledRule], lexicon: Lexicon):
        self.rules = tuple(rules)
        self.lexicon = lexicon
        self._roots: list[_Matcher] = []  # one per distinct query
        self._rules_of: list[list[int]] = []  # query -> the rules (by position) that have it
        numbers: dict[str, int] = {}
        for i, rule in enumerate(self.rules):
            query = numbers.setdefault(rule.query, len(numbers))
            if query == len(self._roots):
                self._roots.append(_plan_for(rule, lexicon).root)
                self._rules_of.append([])
            self._rules_of[query].append(i)
        self._distinct = [_terms_are_distinct(root) for root in self._roots]
        self._always: list[int] = []
        self._postings: dict[str, dict[str, _Filed]] = {}  # anchor namespace -> anchor word -> queries
        for query, root in enumerate(self._roots):
            requirement = root.requirement()
            if not requirement or frozenset() in requirement:
                self._always.append(query)
            else:
                for clause in requirement:
                    (namespace, word), *others = _by_selectivity(clause)
                    self._postings.setdefault(namespace, {}).setdefault(word, _Filed()).add(query, others)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def unindexed(self) -> list[CompiledRule]:
        """Rules evaluated on every item (worth a lint warning when there are many)."""
        return [self.rules[i] for i in sorted(i for query in self._always for i in self._rules_of[query])]

    def candidates(self, doc: Document) -> list[CompiledRule]:
        """The rules the index would evaluate for ``doc``, in rule order."""
        queries = self._candidate_queries(PreparedDocument(doc, self.lexicon))
        return [self.rules[i] for i in sorted(i for query in queries for i in self._rules_of[query])]

    def match(self, doc: Document) -> list[tuple[CompiledRule, list[Hit]]]:
        """Every rule that matches ``doc``, with its hits, in rule order."""
        prepared = PreparedDocument(doc, self.lexicon)
        # In order: the compiled queries then sit in memory roughly as they are read.
        return self._evaluate(prepared, sorted(self._candidate_queries(prepared)))

    def match_naive(self, doc: Document) -> list[tuple[CompiledRule, list[Hit]]]:
        """Like match(), but evaluating every rule; for tests and benchmarks."""
        prepared = PreparedDocument(doc, self.lexicon)
        return self._evaluate(prepared, range(len(self._roots)))

    def _candidate_queries(self, doc: PreparedDocument) -> set[int]:
        found = set(self._always)
        offered = _Offered(doc)
        for namespace, postings in self._postings.items():
            # The intersection walks its smaller side: the item's few words,
            # not every word of the index.
            for word in postings.keys() & offered[namespace]:
                postings[word].completed(offered, found)
        return found

    def _evaluate(self, doc: PreparedDocument, queries: Iterable[int]) -> list[tuple[CompiledRule, list[Hit]]]:
        matched: list[tuple[int, list[Hit]]] = []
        roots, rules_of, distinct = self._roots, self._rules_of, self._distinct
        sources: list[_SpanMatcher] = []
        for query in queries:
            sources.clear()
            if not roots[query].match(doc, sources):
                continue
            hits = _hits(doc, sources, distinct[query])
            rules = rules_of[query]
            matched.append((rules[0], hits))
            if len(rules) > 1:
                matched.extend([(i, hits.copy()) for i in rules[1:]])  # each rule gets its own list
        matched.sort(key=_order)
        return [(self.rules[i], hits) for i, hits in matched]
