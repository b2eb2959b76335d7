from __future__ import annotations

import random

import pytest

from monitor.items import KnownEntity, Mention
from monitor.rules.document import Document, Lexicon
from monitor.rules.evaluate import CompiledRule, compile_rule, explain
from monitor.rules.lint import (
    MATCHES_ALMOST_EVERYTHING,
    NEVER_MATCHES,
    NO_MATCHES,
    TERM_NEVER_SEEN,
    UNINDEXED,
    Finding,
    history_findings,
    lint,
    static_findings,
)

LEXICON = Lexicon.from_entities(
    [
        KnownEntity("Vladimir Putin", "PERSON", ("Putin", "Путин")),
        KnownEntity("Xi Jinping", "PERSON", ("Xi", "President Xi")),
        # "peace talks" names an entity here, so it also matches "PTI".
        KnownEntity("PTI", "ORG", ("Peace Talks Initiative", "peace talks")),
    ]
)


def never_matches(query: str, lexicon: Lexicon = LEXICON) -> list[Finding]:
    rule = compile_rule("r", query, lexicon)
    return [f for f in static_findings(rule, lexicon) if f.kind == NEVER_MATCHES]


def mention(doc_field: str, string: str, surface: str, canonical: str, label: str) -> Mention:
    start = string.index(surface)
    return Mention(surface, canonical, label, doc_field, start, start + len(surface))


UNSATISFIABLE = [
    "Putin AND NOT Putin",
    "Putin -Putin",
    "Putin AND NOT putin",
    "title:Ceasefire AND NOT title:ceasefire",
    "(Putin AND Kyiv) AND NOT Putin",
    "Putin AND NOT (Putin OR Kyiv)",
    "Putin AND NOT (Kyiv OR (Moscow OR Putin))",
    '"ceasefire talks" AND NOT talks',
    '"ceasefire talks" AND -ceasefire*',
    '"ceasefire talks" AND NOT "CEASEFIRE TALKS"',
    "title:Putin AND NOT Putin",
    'tag:"world news" AND NOT tag:world',
    "(Kyiv OR Moscow) AND NOT Kyiv AND NOT Moscow",
    "(((Kyiv OR Moscow) AND sanctions) OR (Minsk AND NOT Minsk)) AND NOT Kyiv AND NOT Moscow",
    "NOT (Kyiv OR NOT Kyiv)",
    "NOT NOT Kyiv AND NOT Kyiv",
    "Kyiv NEAR/3 Moscow AND NOT Moscow NEAR/5 Kyiv",
    "Kyiv NEAR/3 Moscow AND NOT Moscow",
    "(Kyiv OR Odesa) NEAR/3 Moscow -Kyiv -Odesa",
    "author:Smith NEAR/3 title:Putin",
    "tag:war NEAR/2 Putin",
    "person:Putin AND NOT person:putin",
    "site:bbc.co.uk AND NOT site:BBC.co.uk.",
    "/pu[ts]in/ AND NOT /pu[ts]in/",
    # Every name of Putin contains one of Putin's names.
    '"Vladimir Putin" AND NOT Putin',
]


@pytest.mark.parametrize("query", UNSATISFIABLE)
def test_flags_rules_that_can_never_match(query: str) -> None:
    [finding] = never_matches(query)
    assert finding.message.startswith("can never match: ")
    assert finding.severity == "error"
    assert finding.column is not None and 1 <= finding.column <= len(query)


# Each query can match: the document beside it is a witness.
SATISFIABLE = [
    ("Putin AND NOT Kyiv", Document(title="", body="Putin spoke")),
    ("Putin NEAR/5 Putin", Document(title="", body="Putin said Putin would")),
    ('talks AND NOT "ceasefire talks"', Document(title="", body="trade talks")),
    ('ceasefire* AND NOT "ceasefire talks"', Document(title="", body="ceasefires held")),
    ("ceasefire* AND NOT ceasefire", Document(title="", body="ceasefires held")),
    ("Putin AND NOT title:Putin", Document(title="Talks", body="Putin spoke")),
    ("title:Putin AND NOT author:Putin", Document(title="Putin", body="")),
    ("Putin AND NOT tag:Putin", Document(title="", body="Putin")),
    ("(Putin OR Kyiv) AND NOT Putin", Document(title="", body="Kyiv")),
    ("Putin AND NOT (Putin AND Kyiv)", Document(title="", body="Putin")),
    ("Kyiv NEAR/5 Moscow AND NOT Kyiv NEAR/3 Moscow", Document(title="", body="Kyiv a b c d Moscow")),
    ("Kyiv NEAR/3 Moscow AND NOT Kyiv NEAR/3 Minsk", Document(title="", body="Kyiv Moscow")),
    ("title:Kyiv NEAR/3 Moscow", Document(title="Kyiv and Moscow", body="")),
    ("tag:war NEAR/1 tag:crimes", Document(title="", body="", tags=("war crimes",))),
    ("Kyiv OR NOT Kyiv", Document(title="", body="")),
    ("NOT Kyiv", Document(title="", body="")),
    ("Kyiv AND NOT NOT Kyiv", Document(title="", body="Kyiv")),
    ("site:bbc.co.uk AND NOT site:www.bbc.co.uk", Document(title="", body="", link="https://news.bbc.co.uk/x")),
    ("/pu[ts]in/ AND NOT Putin", Document(title="", body="Pusin")),
    # "peace talks" is also an alias of PTI, so it matches "PTI" without "talks".
    ('"peace talks" AND NOT talks', Document(title="", body="PTI met")),
    (
        "person:Putin AND NOT Putin",
        Document(
            title="",
            body="the Russian president said",
            mentions=(mention("body", "the Russian president said", "Russian president", "Vladimir Putin", "PERSON"),),
        ),
    ),
    ("person:Putin AND NOT entity:Putin", None),  # not decided statically; no witness needed
]


@pytest.mark.parametrize(("query", "witness"), SATISFIABLE)
def test_does_not_flag_rules_that_can_match(query: str, witness: Document | None) -> None:
    assert never_matches(query) == []
    if witness is not None:
        assert explain(compile_rule("r", query, LEXICON), witness, LEXICON) is not None


def test_the_message_names_the_offending_terms() -> None:
    [finding] = never_matches('"ceasefire talks" AND NOT talks')
    assert '"ceasefire talks"' in finding.message and "talks" in finding.message
    assert finding.column == len('"ceasefire talks" AND NOT ') + 1  # at the excluded term

    [finding] = never_matches("author:Smith NEAR/3 title:Putin")
    assert "author" in finding.message and "title" in finding.message


def test_an_alias_can_make_a_contradiction_a_satisfiable_rule() -> None:
    plain = Lexicon()
    assert never_matches('"peace talks" AND NOT talks', plain)
    assert not never_matches('"peace talks" AND NOT talks', LEXICON)


def test_a_rule_evaluated_on_every_item_is_reported_as_info() -> None:
    [finding] = static_findings(compile_rule("r", "NOT sport", LEXICON), LEXICON)
    assert (finding.kind, finding.severity) == (UNINDEXED, "info")
    assert static_findings(compile_rule("r", "Putin AND NOT sport", LEXICON), LEXICON) == []


VOCABULARY = ["a", "b", "c", "a*", '"a b"', '"b a"', "title:a", "title:b", "tag:a", "author:a"]


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth >= 3 or roll < 0.35:
        return rng.choice(VOCABULARY)
    if roll < 0.5:
        return "NOT " + random_query(rng, depth + 1)
    if roll < 0.6:
        return f"{rng.choice(['a', 'b', 'title:a', 'tag:b'])} NEAR/{rng.randint(0, 2)} {rng.choice(['a', 'b', 'c'])}"
    operator = rng.choice([" AND ", " OR "])
    return "(" + operator.join(random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))) + ")"


def random_document(rng: random.Random) -> Document:
    def text() -> str:
        return " ".join(rng.choice(["a", "b", "c", "ab", "x"]) for _ in range(rng.randint(0, 5)))

    return Document(title=text(), body=text(), author=text(), tags=tuple(text() for _ in range(rng.randint(0, 2))))


def test_rules_reported_as_never_matching_match_no_random_document() -> None:
    rng = random.Random(20261120)
    documents = [random_document(rng) for _ in range(300)]
    flagged = 0
    for _ in range(400):
        query = random_query(rng)
        if never_matches(query, Lexicon()):
            flagged += 1
            rule = compile_rule("r", query, Lexicon())
            assert all(explain(rule, doc, Lexicon()) is None for doc in documents), query
    assert flagged >= 10  # the generator does produce contradictions


# --- history ------------------------------------------------------------------


def history(n: int, every: int = 1) -> list[Document]:
    """``n`` items; every ``every``-th mentions Putin (as an entity too)."""
    documents = []
    for i in range(n):
        if i % every == 0:
            body = f"Putin spoke on day {i}"
            documents.append(
                Document(
                    title="Kremlin",
                    body=body,
                    feed="wire",
                    mentions=(mention("body", body, "Putin", "Vladimir Putin", "PERSON"),),
                )
            )
        else:
            documents.append(Document(title="Weather", body=f"rain on day {i}", feed="wire"))
    return documents


def rules(*queries: str) -> list[CompiledRule]:
    return [compile_rule(f"r{i}", query, LEXICON) for i, query in enumerate(queries)]


def kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.rule, f.kind) for f in findings]


def test_a_rule_matching_most_of_history_is_flagged_with_its_share() -> None:
    found = history_findings(rules("day", "Putin"), history(60, every=4), LEXICON)
    assert kinds(found) == [("r0", MATCHES_ALMOST_EVERYTHING)]
    assert "60 of 60" in found[0].message and "100%" in found[0].message


def test_matching_almost_everything_needs_enough_history() -> None:
    assert history_findings(rules("day"), history(10), LEXICON, min_items=50) == []
    found = history_findings(rules("day"), history(10), LEXICON, min_items=10)
    assert kinds(found) == [("r0", MATCHES_ALMOST_EVERYTHING)]


def test_the_threshold_is_a_share_of_items() -> None:
    documents = history(100, every=2)  # Putin in half of them
    assert history_findings(rules("Putin"), documents, LEXICON, almost_all=0.5) == []
    found = history_findings(rules("Putin"), documents, LEXICON, almost_all=0.4)
    assert kinds(found) == [("r0", MATCHES_ALMOST_EVERYTHING)] and "50%" in found[0].message


def test_terms_never_seen_are_named_with_their_column() -> None:
    found = history_findings(rules("Putin AND (Kremlin OR Kremiln)"), history(5), LEXICON)
    assert kinds(found) == [("r0", TERM_NEVER_SEEN)]
    assert found[0].column == len("Putin AND (Kremlin OR ") + 1
    assert "Kremiln" in found[0].message and "5 stored items" in found[0].message


def test_negated_terms_need_not_occur() -> None:
    assert history_findings(rules("Putin AND NOT Kremiln"), history(5), LEXICON) == []
    # Under two NOTs a term is looked for again.
    assert kinds(history_findings(rules("Putin AND NOT NOT Kremiln"), history(5), LEXICON)) == [
        ("r0", NO_MATCHES),
        ("r0", TERM_NEVER_SEEN),
    ]


def test_entity_terms_are_checked_against_mentions() -> None:
    assert history_findings(rules("person:Putin"), history(5), LEXICON) == []
    # "Kremlin" occurs as a word, but never as a mentioned organisation.
    found = history_findings(rules("Putin AND org:Kremlin"), history(5), LEXICON)
    assert kinds(found) == [("r0", NO_MATCHES), ("r0", TERM_NEVER_SEEN)]
    assert "org:Kremlin" in found[1].message and "organisation" in found[1].message


def test_terms_inside_near_are_checked() -> None:
    found = history_findings(rules("Putin NEAR/3 Kremiln"), history(5), LEXICON)
    assert kinds(found) == [("r0", NO_MATCHES), ("r0", TERM_NEVER_SEEN)]


def test_a_rule_that_never_matched_is_only_info() -> None:
    [finding] = history_findings(rules("Putin AND Weather"), history(5, every=2), LEXICON)
    assert (finding.kind, finding.severity) == (NO_MATCHES, "info")
    assert "none of the 5 stored items" in finding.message


def test_no_history_no_findings() -> None:
    assert history_findings(rules("Kremiln"), [], LEXICON) == []


def test_history_is_read_once() -> None:
    documents = iter(history(60))
    found = history_findings(rules("Kremiln", "day"), documents, LEXICON)
    assert kinds(found) == [("r0", NO_MATCHES), ("r0", TERM_NEVER_SEEN), ("r1", MATCHES_ALMOST_EVERYTHING)]


def test_lint_lists_static_then_history_findings_in_rule_order() -> None:
    found = lint(rules("Putin", "Kremiln AND NOT Kremiln", "day"), history(60), LEXICON)
    assert kinds(found) == [
        ("r0", MATCHES_ALMOST_EVERYTHING),
        ("r1", NEVER_MATCHES),  # its "no-matches" would only repeat this
        ("r1", TERM_NEVER_SEEN),
        ("r2", MATCHES_ALMOST_EVERYTHING),
    ]
    assert found[1].to_dict() == {
        "rule": "r1",
        "kind": NEVER_MATCHES,
        "severity": "error",
        "message": "can never match: it requires Kremiln and excludes it (NOT Kremiln)",
        "column": len("Kremiln AND NOT ") + 1,
    }
