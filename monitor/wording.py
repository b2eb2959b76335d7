"""PURE: counts in words every part of the product prints alike (``1 rule``, ``2 rules``)."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 rule``, ``2 rules``, ``0 stories`` (``many`` when adding an s is not the plural)."""
    return f"{count} {word if count == 1 else many or word + 's'}"
