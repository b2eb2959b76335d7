"""Data that crosses module boundaries: feed items and entity mentions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Item:
    """One entry of a feed, reduced to what matching and alerting need.

    ``text`` is plain text (HTML already reduced); ``published_at`` is UTC-aware.
    """

    guid: str | None
    link: str | None
    title: str
    text: str
    author: str | None = None
    tags: tuple[str, ...] = ()
    published_at: datetime | None = None

    @property
    def content_hash(self) -> str:
        """Hash of what a reader sees; a changed hash means a changed item."""
        digest = hashlib.sha256()
        for part in (self.title, self.text, self.link or ""):
            digest.update(part.encode("utf-8"))
            digest.update(b"\x00")
        return digest.hexdigest()

    @property
    def key(self) -> str:
        """Identity within a feed: the guid, else the link, else the content hash."""
        return self.guid or self.link or f"sha256:{self.content_hash}"


@dataclass(frozen=True)
class Mention:
    """One entity found in an item.

    ``field`` is "title" or "body" (``Item.title`` / ``Item.text``);
    ``start``/``end`` are character offsets in that string. ``canonical`` is the resolved name (from entities.yaml or the
    longest full name in the same item), ``type`` a spaCy label (PERSON, ORG,
    GPE, LOC, ...).
    """

    text: str
    canonical: str
    type: str
    field: str
    start: int
    end: int


# The entity types news-monitor extracts and links (spaCy's labels); a known entity has one of them.
ENTITY_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW"})


@dataclass(frozen=True)
class KnownEntity:
    """An entry of entities.yaml."""

    name: str
    type: str
    aliases: tuple[str, ...] = field(default=())

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class FeedSpec:
    """What a user says about a feed (in monitor.yaml or through ``feeds add``)."""

    name: str
    url: str
    interval: timedelta | None = None
    tags: tuple[str, ...] = ()
    alert_first_fetch: bool = False
