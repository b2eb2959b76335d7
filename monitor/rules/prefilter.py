"""PURE: the plain words an item must contain for a rule to match it, for a full-text prefilter.

The rule index (:mod:`monitor.rules.index`) already knows what any match of a
rule must carry: clauses of keys, one of which an item must hold in full. Of
those keys, the words of the title and text (``text`` and ``title`` keys that
are plain ASCII letters and digits) are words a full-text index holds in the
same form as the rules fold them, as long as the item's text is plain ASCII
(typographic quotes, dashes and spaces aside). So the items a rule can match
are among those whose index holds every such word of one clause, plus items
with other characters beyond ASCII, which :func:`may_contain` tests against
the rules' own folding.

A clause with no such word (an entity scope, a site, a tag, a prefix, a
regex) says nothing the index can check, and neither does a rule with a NOT
only: then :func:`required_words` gives None and every item is evaluated.
"""

from __future__ import annotations

import re
import unicodedata

from monitor.rules.document import Lexicon
from monitor.rules.evaluate import CompiledRule, _plan_for
from monitor.rules.index import _requirement
from monitor.rules.text import _EXTRA_FOLDS, _NONSPACING

_PLAIN_WORD = re.compile(r"[0-9a-z]+")
_TEXT_NAMESPACES = frozenset({"text", "title"})
# A character beyond ASCII that may be part of a word: anything but typographic quotes, dashes, ellipsis, spaces.
_WORD_BEYOND_ASCII = re.compile("[^\x00-\x7f\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb\u00a0]")
MAX_CLAUSES = 16  # beyond this many alternatives the index query is not worth it


def required_words(rule: CompiledRule, lexicon: Lexicon) -> tuple[frozenset[str], ...] | None:
    """Clauses of plain words: every item ``rule`` matches holds each word of at least one clause in its
    title or text. None when nothing of the kind can be said (every item must then be evaluated)."""
    requirement = _requirement(_plan_for(rule, lexicon).root)
    if not requirement:
        return None
    clauses: set[frozenset[str]] = set()
    for clause in requirement:
        # Dropping a key an index cannot check weakens the clause, never wrongly excludes an item.
        usable = frozenset(
            word for namespace, word in clause if namespace in _TEXT_NAMESPACES and _PLAIN_WORD.fullmatch(word)
        )
        if not usable:
            return None  # this alternative needs nothing the index holds: any item may match through it
        clauses.add(usable)
    if len(clauses) > MAX_CLAUSES:
        return None
    return tuple(sorted(clauses, key=sorted))


def may_contain(clauses: tuple[frozenset[str], ...], title: str, text: str) -> bool:
    """Whether ``title``/``text`` may hold, as the rules fold words, every word of one clause (a quick test
    that never says no wrongly: each word is looked for inside the folded text, not as a whole word)."""
    if not (_WORD_BEYOND_ASCII.search(title) or _WORD_BEYOND_ASCII.search(text)):
        # Plain ASCII but for typographic quotes, dashes and spaces, which part words alike in the index and
        # in the rules: the index has said it all.
        return False
    folded = _fold_all(title + "\n" + text)
    return any(all(word in folded for word in clause) for clause in clauses)


def _fold_all(text: str) -> str:
    """The text folded as :func:`monitor.rules.text.fold` folds each word (not cached: texts are long)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return decomposed.translate(_NONSPACING).translate(_EXTRA_FOLDS)
