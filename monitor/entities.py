"""Entity mentions of feed items: spaCy's ``ner`` plus the known-entity table.

For each (title, body) pair::

    model spans (ner only, batched) | normalise | phrase hits | phrase hits win overlaps | Mentions

Phrase hits are the names of entities.yaml, the full names the item itself spells out, and the
first or last name standing alone for one of those full names. The model finds names well in
running text and badly in Title-Case headlines, where it misses them or glues words onto them
("Putin Hold Call As"); the phrase hits cover those cases, give every known name its canonical
form and configured type, and link "Putin" to the "Vladimir Putin" of the same story.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import spacy
from spacy.lang.en.stop_words import STOP_WORDS
from spacy.language import Language
from spacy.tokens import Doc, Span

from monitor.items import ENTITY_LABELS, KnownEntity, Mention

# The model's names and errors live where they are needed without importing spaCy.
from monitor.nlp import DEFAULT_MODEL, FALLBACK_MODEL, ModelError, ModelNotFoundError

DEFAULT_BATCH_SIZE = 64
DEFAULT_MAX_CHARS = 20_000

KEPT_LABELS = ENTITY_LABELS

# Components that compute embeddings other components may listen to; kept when ner listens to "*".
_EMBEDDERS = frozenset({"tok2vec", "transformer", "curated_transformer"})


# --------------------------------------------------------------------------------------------
# Loading


def resolve_model(model: str = DEFAULT_MODEL) -> str:
    """The package or directory that load_pipeline(model) loads."""
    if (
        model == DEFAULT_MODEL
        and not spacy.util.is_package(DEFAULT_MODEL)
        and spacy.util.is_package(FALLBACK_MODEL)
    ):
        return FALLBACK_MODEL
    return model


def load_pipeline(model: str = DEFAULT_MODEL) -> Language:
    """Load ``model`` (a package name or a directory) with only the components ner needs.

    en_core_web_sm's ner has its own tok2vec, so it runs alone at about half the cost of the
    full pipeline and finds the same entities, but for the rare one that runs across a sentence
    boundary the parser would have drawn (see _end_before_full_stop). Raises
    ModelNotFoundError or ModelError.

    The process should run with OPENBLAS_NUM_THREADS=1 (set before numpy loads): on ner's
    small matrices OpenBLAS's threads only contend with the caller, about 20% slower on two cores.
    """
    name = resolve_model(model)
    config = spacy.util.load_config(_data_dir(name, model) / "config.cfg")
    try:
        return spacy.load(name, exclude=_unneeded_components(config, model))
    except (OSError, ImportError) as error:
        raise ModelNotFoundError(model) from error


def _data_dir(name: str, requested: str) -> Path:
    if spacy.util.is_package(name):
        try:
            package = spacy.util.get_package_path(name)
        except ImportError as error:
            raise ModelNotFoundError(requested) from error
        meta = spacy.util.get_model_meta(package)
        # The layout spaCy's own package loader reads (spacy.util.load_model_from_init_py).
        return package / f"{meta['lang']}_{meta['name']}-{meta['version']}"
    path = Path(name)
    if (path / "config.cfg").is_file():
        return path
    raise ModelNotFoundError(requested)


def _unneeded_components(config: Any, model: str) -> list[str]:
    pipeline = list(config["nlp"]["pipeline"])
    if "ner" not in pipeline:
        raise ModelError(
            f"spaCy model {model!r} has no 'ner' component (it has {', '.join(pipeline) or 'none'}); "
            "set nlp.model in monitor.yaml to a pipeline that recognises named entities"
        )
    components = config["components"]
    keep = {"ner"}
    # Larger pipelines may share one embedding layer: ner then listens to it and needs it loaded.
    for upstream in _listened_to(components["ner"]):
        if upstream == "*":
            keep |= {c for c in pipeline if components[c].get("factory") in _EMBEDDERS}
        else:
            keep.add(upstream)
    return [component for component in pipeline if component not in keep]


def _listened_to(section: Any) -> set[str]:
    found: set[str] = set()
    stack = [section]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("upstream"), str):
                found.add(node["upstream"])
            stack.extend(node.values())
    return found


# --------------------------------------------------------------------------------------------
# Text helpers

# Whole words: no letter or digit on either side. An apostrophe may follow only as the
# possessive, so "Xi's" holds "Xi" and "Xi'an" does not.
_BEFORE = r"(?<!\w)(?<!\w['’])"
_AFTER = r"(?!\w)(?!['’](?!s\b)\w)"
# Scripts written without spaces between words have no word boundary to look for.
_UNSPACED = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

# A leading "the", surrounding quotes and brackets, and a trailing possessive are not part of
# a name: "the Kremlin's" is "Kremlin".
_LEAD = re.compile(r"""[\s"“”‘«(\[]*(?:the\s+)?""", re.IGNORECASE)
_TRAIL = re.compile(r"""(?:['’]s|(?<=s)['’])?[\s"“”’»)\]]*\Z""")

_SENTENCE_ENDS = frozenset({".", "!", "?"})

_LONG_WORD = re.compile(r"[^\W\d_]{4,}")
_TITLE_CASE_SAMPLE = 400

# Words that begin or end a model's PERSON span without being a name anyone is called by alone.
_NOT_A_NAME = frozenset(
    "Jr Jr. Sr Sr. II III IV Mr Mr. Mrs Mrs. Ms Ms. Dr Dr. Sir Dame President Prime Minister "
    "Chancellor King Queen Prince Princess Pope Senator General Governor Mayor Judge".split()
)
# Where the model calls a surname one of these, it is that thing and not the person:
# "Washington" (GPE) beside Denzel Washington, "Paris" (GPE) beside Paris Hilton, "August"
# (DATE) beside August Wilson.
_NOT_A_SURNAME = frozenset({"GPE", "LOC", "FAC", "DATE", "TIME"})


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _names_pattern(names: Iterable[str]) -> re.Pattern[str] | None:
    """One regex finding any of ``names``; group 1 is the name found.

    Longest first, so "President Xi" wins over "Xi" where both start. The lookahead makes
    finditer also report matches that overlap an earlier one ("Xi Jinping" inside "President
    Xi Jinping"), which _resolve() then merges.
    """
    spaced = sorted({n for n in names if n.strip() and not _UNSPACED.search(n)}, key=lambda n: (-len(n), n))
    unspaced = sorted({n for n in names if _UNSPACED.search(n)}, key=lambda n: (-len(n), n))
    alternatives = []
    if spaced:
        alternatives.append(_BEFORE + "(?=(" + "|".join(map(re.escape, spaced)) + ")" + _AFTER + ")")
    if unspaced:
        alternatives.append("(?=(" + "|".join(map(re.escape, unspaced)) + "))")
    if not alternatives:
        return None
    if len(alternatives) == 1:
        return re.compile(alternatives[0])
    # Two groups then; _name_matches() reads whichever matched.
    return re.compile("|".join(alternatives))


def _name_matches(pattern: re.Pattern[str] | None, text: str) -> Iterator[tuple[int, int, str]]:
    if pattern is None:
        return
    for match in pattern.finditer(text):
        group = 1 if match.group(1) is not None else 2
        yield match.start(group), match.end(group), match.group(group)


_STARTS_WORD = re.compile(_BEFORE)
_ENDS_WORD = re.compile(_AFTER)


def _find_names(text: str, names: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """Whole-word occurrences of a few names; for the handful an item has, str.find is far
    cheaper than compiling a regex per item."""
    for name in names:
        start = text.find(name)
        while start != -1:
            end = start + len(name)
            if _STARTS_WORD.match(text, start) and _ENDS_WORD.match(text, end):
                yield start, end, name
            start = text.find(name, start + 1)


def _is_title_case(text: str) -> bool:
    """Headline style ("Xi And Putin Hold Call"), where the model's spans are unreliable."""
    words = _LONG_WORD.findall(text[:_TITLE_CASE_SAMPLE])
    return len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.75 * len(words)


def _clip(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars``, at a space where one is near, never mid-word."""
    if len(text) <= max_chars:
        return text
    window = max(0, max_chars - 200), max_chars + 1
    space = max(text.rfind(" ", *window), text.rfind("\n", *window))
    return text[: space if space > 0 else max_chars]


def _overlaps(starts: list[int], ends: list[int], start: int, end: int) -> bool:
    """Whether [start, end) overlaps one of the sorted, disjoint intervals (starts[i], ends[i])."""
    i = bisect_right(starts, start) - 1
    if i >= 0 and ends[i] > start:
        return True
    return i + 1 < len(starts) and starts[i + 1] < end


# --------------------------------------------------------------------------------------------
# Spans and hits


@dataclass(frozen=True, slots=True)
class _Span:
    """A model entity, trimmed to the name (see _LEAD and _TRAIL)."""

    start: int
    end: int
    label: str
    text: str  # whitespace collapsed


@dataclass(frozen=True, slots=True)
class _Hit:
    """A name found by phrase, with what it resolves to."""

    start: int
    end: int
    text: str  # as found; a merged hit spans more (see _merge_same_entity)
    canonical: str
    type: str
    rank: int  # between hits of equal length the lower rank wins


# What the item itself says beats the global table: in a story on the physicist Xi Xiaoxing,
# a later "Xi" is him, even though entities.yaml makes "Xi" an alias of Xi Jinping.
# An echo (a name of the running text found again in a Title-Case title) is the weakest hint.
_FULL_NAME, _SHORT_NAME, _ALIAS, _ECHO = 0, 1, 2, 3


def _model_spans(text: str, doc: Doc) -> list[_Span]:
    spans = []
    for ent in doc.ents:
        start, end = ent.start_char, _end_before_full_stop(ent)
        start = _LEAD.match(text, start, end).end()  # type: ignore[union-attr]
        end = _TRAIL.search(text[start:end]).start() + start  # type: ignore[union-attr]
        if end > start:
            spans.append(_Span(start, end, ent.label_, _collapse(text[start:end])))
    return spans


def _end_before_full_stop(ent: Span) -> int:
    """Where ``ent`` ends, or where a sentence inside it ends.

    Without the parser, nothing tells ner where sentences end, and now and then a name runs on
    past a full stop ("the Associated Press. Critics"). A stop that is a token of its own ends
    a sentence; one inside a token ("U.S.", "Mr.") does not.
    """
    for token in ent:
        if token.text in _SENTENCE_ENDS:
            return token.idx
    return ent.end_char


def _merge_same_entity(hits: Iterable[_Hit]) -> list[_Hit]:
    """Overlapping hits of one entity become one: "President Xi" + "Xi Jinping"."""
    by_entity: dict[str, list[_Hit]] = defaultdict(list)
    for hit in hits:
        by_entity[hit.canonical].append(hit)
    merged = []
    for group in by_entity.values():
        group.sort(key=lambda h: h.start)
        current = group[0]
        for hit in group[1:]:
            if hit.start < current.end:
                current = replace(current, end=max(current.end, hit.end), rank=min(current.rank, hit.rank))
            else:
                merged.append(current)
                current = hit
        merged.append(current)
    return merged


def _resolve(hits: Iterable[_Hit]) -> list[_Hit]:
    """Disjoint hits in text order: the longer one wins an overlap, then the lower rank, then
    the earlier."""
    chosen: list[_Hit] = []  # sorted by start, so also by end, as they are disjoint
    starts: list[int] = []
    ends: list[int] = []
    for hit in sorted(_merge_same_entity(hits), key=lambda h: (h.start - h.end, h.rank, h.start)):
        if not _overlaps(starts, ends, hit.start, hit.end):
            at = bisect_right(starts, hit.start)
            chosen.insert(at, hit)
            starts.insert(at, hit.start)
            ends.insert(at, hit.end)
    return chosen


def _as_full_name(span: _Span, inside: Sequence[_Hit]) -> tuple[str, str] | None:
    """(canonical, type) of a multi-word PERSON name the model found, or None.

    The name may hold a short alias: "Xi Xiaoxing" holds "Xi" and is someone else, and so is
    "Michael Jordan" beside the country, while "Donald J. Trump" holds every word of the known
    "Donald Trump" and is him. It may not hold
    a whole known name ("Russian President Vladimir Putin") nor two ("Trump Xi"). ``inside``
    are the aliases that overlap the span.
    """
    if len({a.canonical for a in inside}) > 1 or not all(
        span.start <= a.start and a.end <= span.end and a.end - a.start < span.end - span.start
        and " " not in a.text
        for a in inside
    ):
        return None
    if inside and inside[0].type == "PERSON":
        known = inside[0].canonical.split()
        if len(known) > 1 and set(known) <= set(span.text.split()):
            return inside[0].canonical, "PERSON"
    return span.text, "PERSON"


def _short_forms(full_names: Iterable[str]) -> dict[str, str]:
    """First and last names -> the one full name of the item they stand for.

    A name shared by two full names ("Xi" of Xi Jinping and of Xi Xiaoxing) stands for neither.
    """
    owners: dict[str, set[str]] = defaultdict(set)
    for full in full_names:
        words = [w for w in full.split() if w not in _NOT_A_NAME]
        if len(words) >= 2:
            for word in (words[0], words[-1]):
                # "May" and "Will" are mostly ordinary words; initials are too short to find.
                if len(word) > 1 and word[0].isupper() and not word.endswith(".") and word.lower() not in STOP_WORDS:
                    owners[word].add(full)
    return {word: next(iter(fulls)) for word, fulls in owners.items() if len(fulls) == 1}


# --------------------------------------------------------------------------------------------
# The extractor


class _Field:
    """One field of an item with what the model and the alias table found in it, indexed."""

    def __init__(self, name: str, text: str, spans: list[_Span], aliases: list[_Hit]):
        self.name = name
        self.text = text
        self.title_case = _is_title_case(text)
        self.spans = spans  # every model label: the dropped ones still veto short names
        self.aliases = aliases  # in order of start, as finditer reports them
        self._alias_starts = [a.start for a in aliases]
        self._alias_reach = max((a.end - a.start for a in aliases), default=0)
        self._span_starts = [s.start for s in spans]  # model entities are disjoint
        self._known_not_people = {(a.start, a.end) for a in aliases if a.type != "PERSON"}

    def aliases_overlapping(self, start: int, end: int) -> list[_Hit]:
        low = bisect_left(self._alias_starts, start - self._alias_reach)
        high = bisect_left(self._alias_starts, end)
        return [a for a in self.aliases[low:high] if a.end > start]

    def labels_overlapping(self, start: int, end: int) -> set[str]:
        low = max(bisect_right(self._span_starts, start) - 1, 0)
        high = bisect_left(self._span_starts, end)
        return {s.label for s in self.spans[low:high] if s.end > start}

    def is_something_else(self, start: int, end: int) -> bool:
        """Whether the short name of a person here names something else.

        The model decides where it has a say: "Washington" (GPE) beside Denzel Washington is
        the city, "Jordan" (PERSON) beside Michael Jordan is him even though entities.yaml
        knows the country. Where the model says nothing, a known name keeps its type.
        """
        labels = self.labels_overlapping(start, end)
        if labels & _NOT_A_SURNAME:
            return True
        return (start, end) in self._known_not_people and "PERSON" not in labels


class EntityExtractor:
    """Items -> entity mentions, with known names resolved and short names linked.

    Immutable after construction; one ``extract()`` at a time per instance, as spaCy's
    ``Language`` is not made for concurrent calls. A new entities.yaml means a new extractor
    over the same ``nlp``, which is cheap.
    """

    def __init__(
        self,
        nlp: Language,
        known: Sequence[KnownEntity] = (),
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_chars: int = DEFAULT_MAX_CHARS,
    ):
        if batch_size < 1 or max_chars < 1:
            raise ValueError("batch_size and max_chars must be positive")
        self.nlp = nlp
        self.batch_size = batch_size
        self.max_chars = min(max_chars, nlp.max_length)
        self._known: dict[str, KnownEntity] = {}
        for entity in known:
            for name in entity.names:
                self._known.setdefault(name, entity)  # config rejects clashes; first one wins otherwise
        self._known_pattern = _names_pattern(self._known)

    def extract(self, texts: Sequence[tuple[str, str]]) -> list[list[Mention]]:
        """Mentions of each (title, body) pair, title first, each field in text order.

        Model entities come from the first ``max_chars`` of each text only; known names and
        short names are looked for in the whole text, as that costs little.
        """
        return [
            self._item_mentions(title, body, title_doc, body_doc)
            for (title, body), (title_doc, body_doc) in zip(texts, self.docs(texts), strict=True)
        ]

    def docs(self, texts: Iterable[tuple[str, str]]) -> Iterator[tuple[Doc, Doc]]:
        """The model's docs for each (title, body) pair, before any of the steps above."""
        stream = (_clip(text, self.max_chars) for pair in texts for text in pair)
        # One process: the daemon calls this with one poll's items at a time, and more processes
        # would each load the model again on every call.
        docs = self.nlp.pipe(stream, batch_size=self.batch_size, n_process=1)
        for title_doc in docs:
            yield title_doc, next(docs)

    def _known_hits(self, text: str) -> list[_Hit]:
        hits = []
        for start, end, name in _name_matches(self._known_pattern, text):
            entity = self._known[name]
            hits.append(_Hit(start, end, name, entity.name, entity.type, _ALIAS))
        return hits

    def _item_mentions(self, title: str, body: str, title_doc: Doc, body_doc: Doc) -> list[Mention]:
        fields = [
            _Field(name, text, _model_spans(text, doc), self._known_hits(text))
            for name, text, doc in (("title", title, title_doc), ("body", body, body_doc))
        ]
        full_names = _local_full_names(fields)
        known_full_names = {
            a.canonical for f in fields for a in f.aliases if a.type == "PERSON" and " " in a.text
        }
        short_forms = _short_forms({canonical for canonical, _ in full_names.values()} | known_full_names)
        # Running text first: the names the model found there are looked for in Title-Case text,
        # where the model itself would read "HSBC Shares Slide" as one organisation.
        echoes: dict[str, str] = {}
        mentions: dict[str, list[Mention]] = {}
        for field in sorted(fields, key=lambda f: f.title_case):
            hits = [*field.aliases, *_local_hits(field, full_names, short_forms)]
            if field.title_case:
                hits += _echo_hits(field, echoes)
            mentions[field.name] = _field_mentions(field, _resolve(hits))
            if not field.title_case:
                echoes.update((m.text, m.type) for m in mentions[field.name] if m.text == m.canonical)
        return mentions["title"] + mentions["body"]


def _local_full_names(fields: Sequence[_Field]) -> dict[str, tuple[str, str]]:
    """Multi-word PERSON names found in running text -> (canonical, type).

    Title-Case text is left out: there the model glues words onto names ("Putin Hold Call As").
    """
    names = {}
    for field in fields:
        if field.title_case:
            continue
        for span in field.spans:
            if span.label == "PERSON" and " " in span.text:
                resolved = _as_full_name(span, field.aliases_overlapping(span.start, span.end))
                if resolved is not None:
                    names[span.text] = resolved
    return names


def _local_hits(
    field: _Field, full_names: dict[str, tuple[str, str]], short_forms: dict[str, str]
) -> list[_Hit]:
    """Where the item's own full names, and the short names standing for them, occur in ``field``."""
    # The model's own spans count too: they hold names that str.find misses ("Angela\n Merkel").
    hits = [
        _Hit(s.start, s.end, s.text, *full_names[s.text], _FULL_NAME)
        for s in field.spans
        if s.label == "PERSON" and s.text in full_names
    ]
    for start, end, name in _find_names(field.text, [*full_names, *short_forms]):
        if name in full_names:
            hits.append(_Hit(start, end, name, *full_names[name], _FULL_NAME))
        elif not field.is_something_else(start, end):
            hits.append(_Hit(start, end, name, short_forms[name], "PERSON", _SHORT_NAME))
    return hits


def _echo_hits(field: _Field, echoes: dict[str, str]) -> list[_Hit]:
    return [_Hit(start, end, name, name, echoes[name], _ECHO) for start, end, name in _find_names(field.text, echoes)]


def _field_mentions(field: _Field, hits: list[_Hit]) -> list[Mention]:
    """Hits, and the model's entities of kept types that no hit overlaps, in text order."""
    starts, ends = [h.start for h in hits], [h.end for h in hits]
    mentions = [
        Mention(_collapse(field.text[h.start : h.end]), h.canonical, h.type, field.name, h.start, h.end)
        for h in hits
    ]
    mentions += [
        Mention(s.text, s.text, s.label, field.name, s.start, s.end)
        for s in field.spans
        if s.label in KEPT_LABELS and not _overlaps(starts, ends, s.start, s.end)
    ]
    mentions.sort(key=lambda m: m.start)
    return mentions
