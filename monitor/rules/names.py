"""PURE: telling a mistyped rule name from a query, and the rule name nearest to it."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

__all__ = ["looks_like_rule_name", "nearest_rule"]

# One token of letters, digits, "-" and "_", not starting with "-" (that is NOT in a query).
_NAME_SHAPED = re.compile(r"^\w[\w-]*$")
_CLOSE = 0.8  # difflib ratio from which a plain word is taken for a rule name
_SUGGEST = 0.6  # ratio from which a hyphenated token is taken for a rule name, and a rule suggested


def nearest_rule(text: str, names: Iterable[str], cutoff: float = _SUGGEST) -> str | None:
    """The rule name closest to ``text`` (case ignored), or None when none is close."""
    by_folded = {name.casefold(): name for name in names}
    near = difflib.get_close_matches(text.casefold(), list(by_folded), n=1, cutoff=cutoff)
    return by_folded[near[0]] if near else None


def looks_like_rule_name(text: str, names: Iterable[str], *, near_only: bool = True) -> bool:
    """True when ``text`` (not itself a rule name) reads as one rather than as a query.

    A single token close to a rule's name: ``xi-putn`` or ``xiputin`` beside a
    rule ``xi-putin``. A hyphenated word that is near no rule (``al-Assad``) is
    a query, as is anything with spaces, quotes, a field (``person:``), a prefix
    ``*`` or a regex. With ``near_only=False``, any hyphenated or underscored
    token counts (to say that it was read as a query).
    """
    if not _NAME_SHAPED.match(text):
        return False
    if not near_only and ("-" in text or "_" in text):
        return True
    cutoff = _SUGGEST if ("-" in text or "_" in text) else _CLOSE
    return nearest_rule(text, names, cutoff=cutoff) is not None
