"""Digests: the released alerts of each channel as one message, a section per rule."""

from __future__ import annotations

from monitor.alerts.digest import DigestEntry, group_digest


def entry(alert_id: int, rule: str) -> DigestEntry:
    return DigestEntry(alert_id, rule, f"Story {alert_id}", f"https://news.example/{alert_id}", "wire", (("bbc-world", None),))


def test_group_digest_makes_one_message_per_channel_with_a_section_per_rule_in_order() -> None:
    digests = group_digest(
        [
            ("newsroom", entry(1, "xi-putin")),
            ("me", entry(2, "ukraine")),
            ("newsroom", entry(3, "ukraine")),
            ("newsroom", entry(4, "xi-putin")),
            ("me", entry(5, "ukraine")),
            ("me", entry(6, "xi-putin")),
        ]
    )
    assert list(digests) == ["newsroom", "me"]
    newsroom = digests["newsroom"]
    assert [(section.rule, [e.alert_id for e in section.entries]) for section in newsroom.sections] == [
        ("xi-putin", [1, 4]),
        ("ukraine", [3]),
    ]
    assert newsroom.alert_ids == (1, 4, 3)
    assert digests["me"].alert_ids == (2, 5, 6)
    assert digests["me"].story_count == 3


def test_group_digest_of_nothing_is_no_message() -> None:
    assert group_digest([]) == {}
