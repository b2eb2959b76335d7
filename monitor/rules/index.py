"""The rule index: which rules an item needs to be evaluated against.

``RuleIndex`` is the presearcher: it files each rule under the words or
entities an item must contain for the rule to have any chance, so an item is
only evaluated against the rules whose keys it carries, plus the few that
cannot be filed (pure negations, regexes, very short prefixes), which are
evaluated every time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set

from monitor.rules.document import Document, Hit, Lexicon, PreparedDocument, _order
from monitor.rules.evaluate import (
    CompiledRule,
    _AllOf,
    _AnyOf,
    _EntityTerm,
    _hits,
    _Matcher,
    _Near,
    _NoneOf,
    _plan_for,
    _regex_heads,
    _RegexTerm,
    _SiteTerm,
    _SpanMatcher,
    _SpanUnion,
    _terms_are_distinct,
    _TextTerm,
)
from monitor.rules.text import WordPattern

# --- index keys ----------------------------------------------------------------

# What the index knows of a rule: the item must carry every key of at least one
# clause. A key is (namespace, word): "text" words of title and body, "title",
# "author", "feed" and "tag" words of those fields, "ent" words of mention
# names, "known" canonical names of known entities, "site" host suffixes;
# "<namespace>*" holds the first three letters of words, for prefixes.
# None: nothing can be said (NOT sport).
Key = tuple[str, str]
Clause = frozenset[Key]
Requirement = frozenset[Clause] | None


def _requirement(node: _Matcher) -> Requirement:
    """What any document ``node`` matches must carry, for the index."""
    if isinstance(node, _TextTerm):
        return _any_of(_pattern_requirement(node.scope, pattern) for pattern, _ in node.alternatives)
    if isinstance(node, _RegexTerm):
        return _regex_requirement(node.scope, node.regex.pattern)
    if isinstance(node, _EntityTerm):
        if node.known:
            return frozenset(frozenset({("known", entity.name)}) for entity in node.known)
        if node.regex is not None:
            return _regex_requirement("ent", node.regex.pattern)
        return _pattern_requirement("ent", node.pattern)  # type: ignore[arg-type]
    if isinstance(node, _SiteTerm):
        if node.kind == "regex":
            return None
        if node.kind == "prefix":
            return _clauses(("site*", node.value[:3])) if len(node.value) >= 3 else None
        return _clauses(("site", node.value))
    if isinstance(node, _AllOf):
        return _all_of(_requirement(child) for child in node.children)
    if isinstance(node, (_AnyOf, _SpanUnion)):
        return _any_of(_requirement(child) for child in node.children)
    if isinstance(node, _NoneOf):
        return None
    if isinstance(node, _Near):
        return _all_of([_requirement(node.left), _requirement(node.right)])
    raise TypeError(f"not a matcher: {node!r}")


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
            requirement = _requirement(root)
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
