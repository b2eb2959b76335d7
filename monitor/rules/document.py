"""What a rule sees of an item, and what it says back.

``Document`` is an item as rules see it, ``Lexicon`` the known entities (from
entities.yaml) as lookups, and ``Hit`` one reason a rule matched.

An item is analysed at most once per match call (``PreparedDocument``), and
only as far as the rules evaluated on it ask: a field is tokenized when a rule
or the index first reads it, a mention gets token positions when a term finds
it. Every term's result, and its hits, are kept for the rest of the call under
a key shared by every rule that names the same term, so a word is looked up
once per item however many rules contain it.

Word-level semantics (tokens, folding, possessives) live in ``rules.text``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from monitor.items import Item, KnownEntity, Mention
from monitor.rules.text import IndexedText, fold, hostname_span, words

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
