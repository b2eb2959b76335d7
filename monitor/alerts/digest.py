"""Digests: the released alerts of a channel as one message, a section per rule. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Digest", "DigestEntry", "DigestSection", "group_digest"]


@dataclass(frozen=True)
class DigestEntry:
    """One story in a digest; ``alert_id`` is the outbox row it settles."""

    alert_id: int
    rule: str
    title: str
    link: str | None
    feed: str
    outlets: tuple[tuple[str, str | None], ...] = ()  # the other feeds that ran the story: (name, link)
    published_at: datetime | None = None


@dataclass(frozen=True)
class DigestSection:
    """The stories of one rule in a digest, in the order they were given."""

    rule: str
    entries: tuple[DigestEntry, ...]


@dataclass(frozen=True)
class Digest:
    """One message for one channel: a section per rule."""

    channel: str
    sections: tuple[DigestSection, ...]

    @property
    def alert_ids(self) -> tuple[int, ...]:
        return tuple(entry.alert_id for section in self.sections for entry in section.entries)

    @property
    def story_count(self) -> int:
        return sum(len(section.entries) for section in self.sections)


def group_digest(entries: Iterable[tuple[str, DigestEntry]]) -> dict[str, Digest]:
    """The released alerts as one digest per channel, keyed by channel.

    Channels, rule sections and the stories in each keep the order of
    ``entries`` (the store's: oldest first). A story that two rules matched
    appears under both, since each section says why it is there.
    """
    by_channel: dict[str, dict[str, list[DigestEntry]]] = {}
    for channel, entry in entries:
        by_channel.setdefault(channel, {}).setdefault(entry.rule, []).append(entry)
    return {
        channel: Digest(
            channel,
            tuple(DigestSection(rule, tuple(stories)) for rule, stories in rules.items()),
        )
        for channel, rules in by_channel.items()
    }
