from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from monitor.items import Item, KnownEntity, Mention
from monitor.rules.document import Document, Hit, Lexicon
from monitor.rules.evaluate import CompiledRule, compile_rule, explain
from monitor.rules.index import RuleIndex
from monitor.rules.syntax import parse_query

LEXICON = Lexicon.from_entities(
    [
        KnownEntity("Xi Jinping", "PERSON", ("Xi", "President Xi", "Chinese leader Xi")),
        KnownEntity("Vladimir Putin", "PERSON", ("Putin", "Путин")),
        KnownEntity("Jordan", "GPE", ("Hashemite Kingdom of Jordan",)),
    ]
)


def mention(doc_field: str, string: str, surface: str, canonical: str, label: str) -> Mention:
    start = string.index(surface)
    return Mention(surface, canonical, label, doc_field, start, start + len(surface))


def field_string(doc: Document, hit: Hit) -> str:
    if hit.field == "tag":
        assert hit.index is not None
        return doc.tags[hit.index]
    return {"title": doc.title, "body": doc.body, "author": doc.author, "feed": doc.feed, "site": doc.link}[hit.field]


def run(query: str, doc: Document, lexicon: Lexicon = LEXICON) -> list[tuple[str, str]] | None:
    """(field, matched) of each hit, after checking every hit's offsets."""
    hits = explain(compile_rule("r", query, lexicon), doc, lexicon)
    if hits is None:
        return None
    for hit in hits:
        assert field_string(doc, hit)[hit.start : hit.end] == hit.matched
    return [(h.field, h.matched) for h in hits]


def body(text: str) -> Document:
    return Document(title="", body=text)


WHOLE_WORDS = [
    ("Xi", "Xi met the press", [("body", "Xi")]),
    ("Xi", "Xi's visit", [("body", "Xi")]),
    ("Xi", "Xi’s visit", [("body", "Xi")]),
    ("Xi", "XI ARRIVES", [("body", "XI")]),
    ("xi", "Xi arrives", [("body", "Xi")]),
    ("Xi", "Xiaomi shares rose", None),
    ("Xi", "flights to Xi'an", None),
    ("Xi", "flights to Xi’an", None),
    ("Xi'an", "flights to Xi’an", [("body", "Xi’an")]),
    ("Xi", "the Xi-Putin summit", [("body", "Xi")]),
    ("Putin", "the Xi-Putin summit", [("body", "Putin")]),
    ("Xi", "taxi drivers", None),
    ("Zelensky", "Zelenský said", [("body", "Zelenský")]),
    ("Zelensky", "Zelensky\u0301 said", [("body", "Zelensky\u0301")]),
    ("Zelenský", "ZELENSKY said", [("body", "ZELENSKY")]),
    ("Zelensky", "Zelenskyy said", None),
    ('"Sao Paulo"', "in São Paulo today", [("body", "São Paulo")]),
    ("Sao Paulo", "in São Paulo today", [("body", "São"), ("body", "Paulo")]),
    ('"São Paulo"', "Sao-Paulo", [("body", "Sao-Paulo")]),
    ("Straße", "STRASSE", [("body", "STRASSE")]),
    ("Lukaszenka", "Łukaszenka", [("body", "Łukaszenka")]),
    ("O'Brien", "said O’Brien", [("body", "O’Brien")]),
    ("Brien", "said O’Brien", None),
    ("snake", "snake_case", [("body", "snake")]),
    ("and", "war and peace", [("body", "and")]),
    ("2024", "in 2024, then", [("body", "2024")]),
    ("Xi-Putin", "Xi  Putin", [("body", "Xi  Putin")]),
    ("Xi-Putin", "Putin Xi", None),
]


@pytest.mark.parametrize(("query", "text", "expected"), WHOLE_WORDS)
def test_whole_words_case_and_accents(query: str, text: str, expected: object) -> None:
    assert run(query, body(text), Lexicon()) == expected


PHRASES_PREFIXES_REGEXES = [
    ('"peace talks"', "peace talks resumed", [("body", "peace talks")]),
    ('"peace talks"', "Peace-Talks resumed", [("body", "Peace-Talks")]),
    ('"peace talks"', "talks of peace", None),
    ('"peace talks"', "peace and talks", None),
    ('"peace talks"', "peace, talks", [("body", "peace, talks")]),
    ("negotiat*", "Negotiators and negotiations", [("body", "Negotiators"), ("body", "negotiations")]),
    ("negotiat*", "they renegotiated", None),
    ("ne*", "new deal", [("body", "new")]),
    ("Xi-Pu*", "the Xi Putin meeting", [("body", "Xi Putin")]),
    ("/pu[ts]in/", "Pusin and PUTIN", [("body", "Pusin"), ("body", "PUTIN")]),
    ("/pu[ts]in/", "Putinism", None),
    ("/zelensk.*/", "Zelenský said", [("body", "Zelenský")]),
    ("/zelenský/", "Zelensky said", [("body", "Zelensky")]),
    ("/[0-9]{4}/", "in 2024 and 99", [("body", "2024")]),
]


@pytest.mark.parametrize(("query", "text", "expected"), PHRASES_PREFIXES_REGEXES)
def test_phrases_prefixes_and_regexes(query: str, text: str, expected: object) -> None:
    assert run(query, body(text), Lexicon()) == expected


def test_phrase_does_not_span_title_and_body() -> None:
    assert run('"peace talks"', Document(title="Hopes for peace", body="talks resume")) is None


def test_phrase_needs_all_its_words_in_one_field() -> None:
    doc = Document(title="Anna meets Smith", body="Anna Smith spoke. Smith, Anna")
    assert run('"Anna Smith"', doc, Lexicon()) == [("body", "Anna Smith")]
    assert run('title:"Anna Smith"', doc, Lexicon()) is None
    # a known name's multi-word alias is found like any phrase
    assert run("Xi", body("Chinese leader Xi and President Xi")) == [
        ("body", "Chinese leader Xi"), ("body", "President Xi"),
    ]


REGEX_DOCS = ["Partygate and Watergate", "the gate opened", "Gate-gate, partygate", "no such word", "Partygate"]


@pytest.mark.parametrize("limit", [3, 20_000])
def test_regexes_without_a_literal_start_remember_words_correctly(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Such a regex is tried on every item, and remembers which words it
    # matched; what it remembers, or forgets past its limit, never changes a result.
    from monitor.rules import evaluate as match

    monkeypatch.setattr(match._RegexVerdicts, "LIMIT", limit)
    expected = [["Partygate", "Watergate"], None, ["partygate"], None, ["Partygate"]]
    for _ in range(3):
        assert [
            None if hits is None else [h for _, h in hits]
            for hits in (run("/[a-z]+gate/", body(text), Lexicon()) for text in REGEX_DOCS)
        ] == expected


NEAR = [
    # at most N words between the two, either order
    ("Xi NEAR/3 Putin", "Xi met with Russian Putin", [("body", "Xi"), ("body", "Putin")]),
    ("Xi NEAR/3 Putin", "Xi met with the Russian Putin", None),
    ("Xi NEAR/3 Putin", "Putin met with Russian Xi", [("body", "Putin"), ("body", "Xi")]),
    ("Xi NEAR/0 Putin", "Xi Putin", [("body", "Xi"), ("body", "Putin")]),
    ("Xi NEAR/0 Putin", "Xi and Putin", None),
    ('"peace talks" NEAR/2 Moscow', "peace talks resumed in Moscow", [("body", "peace talks"), ("body", "Moscow")]),
    ('"peace talks" NEAR/1 Moscow', "peace talks resumed in Moscow", None),
    ('"peace talks" NEAR/1 Moscow', "Moscow hosted peace talks", [("body", "Moscow"), ("body", "peace talks")]),
    ("negotiat* NEAR/1 ceasefire", "ceasefire negotiations", [("body", "ceasefire"), ("body", "negotiations")]),
    ("/pu[ts]in/ NEAR/1 Xi", "Xi and Putin", [("body", "Xi"), ("body", "Putin")]),
    ("(Biden OR Putin) NEAR/1 Xi", "Xi and Putin", [("body", "Xi"), ("body", "Putin")]),
    ("(Xi NEAR/0 Putin) NEAR/1 summit", "the Xi Putin summit", [("body", "Xi"), ("body", "Putin"), ("body", "summit")]),
    ("Xi NEAR/5 Xi", "Xi arrived", None),
    ("Xi NEAR/5 Xi", "Xi said Xi", [("body", "Xi"), ("body", "Xi")]),
]


@pytest.mark.parametrize(("query", "text", "expected"), NEAR)
def test_near(query: str, text: str, expected: object) -> None:
    assert run(query, body(text), Lexicon()) == expected


def test_near_counts_title_and_body_separately() -> None:
    doc = Document(title="Visit by Xi", body="Putin waits")
    assert run("Xi NEAR/10 Putin", doc, Lexicon()) is None
    assert run("Xi AND Putin", doc, Lexicon()) == [("title", "Xi"), ("body", "Putin")]


def test_near_with_entity_operands() -> None:
    text = "Vladimir Putin praised Gazprom Neft on Monday"
    doc = Document(
        title="",
        body=text,
        mentions=(
            mention("body", text, "Vladimir Putin", "Vladimir Putin", "PERSON"),
            mention("body", text, "Gazprom Neft", "Gazprom Neft", "ORG"),
        ),
    )
    assert run("person:Putin NEAR/1 org:Gazprom", doc) == [("body", "Vladimir Putin"), ("body", "Gazprom Neft")]
    assert run("person:Putin NEAR/0 org:Gazprom", doc) is None


FULL = Document(
    title="Xi and Putin meet",
    body="The leaders discussed trade.",
    author="Jane Doe",
    feed="bbc-world",
    tags=("World news", "Asia Pacific"),
    link="https://www.bbc.co.uk/news/world-123",
)

FIELDS = [
    ("title:Xi", FULL, [("title", "Xi")]),
    ("title:trade", FULL, None),
    ("text:trade", FULL, [("body", "trade")]),
    ("trade", FULL, [("body", "trade")]),
    ('title:"and Putin"', FULL, [("title", "and Putin")]),
    ("title:(Biden OR Putin)", FULL, [("title", "Putin")]),
    ("author:Doe", FULL, [("author", "Doe")]),
    ('author:"jane doe"', FULL, [("author", "Jane Doe")]),
    ("author:Xi", FULL, None),
    ("feed:bbc-world", FULL, [("feed", "bbc-world")]),
    ("feed:bbc", FULL, [("feed", "bbc")]),
    ("feed:cnn", FULL, None),
    ("tag:asia", FULL, [("tag", "Asia")]),
    ('tag:"asia pacific"', FULL, [("tag", "Asia Pacific")]),
    ('tag:"news asia"', FULL, None),  # a phrase never spans two tags
    ("site:bbc.co.uk", FULL, [("site", "bbc.co.uk")]),
    ("site:www.bbc.co.uk", FULL, [("site", "www.bbc.co.uk")]),
    ("site:BBC.CO.UK", FULL, [("site", "bbc.co.uk")]),
    ("site:co.uk", FULL, [("site", "co.uk")]),
    ("site:https://bbc.co.uk/other", FULL, [("site", "bbc.co.uk")]),
    ("site:bc.co.uk", FULL, None),
    ("site:bbc.co", FULL, None),
    ("site:bbc*", FULL, [("site", "bbc.co.uk")]),
    ("site:/.*\\.co\\.uk/", FULL, [("site", "www.bbc.co.uk")]),
    ("site:bbc.co.uk", Document("t", "b", link="https://bbc.co.uk.evil.example/x"), None),
    ("site:bbc.co.uk", Document("t", "b", link="https://notbbc.co.uk/x"), None),
    ("site:bbc.co.uk", Document("t", "b", link="http://user@BBC.co.uk:8080/x"), [("site", "BBC.co.uk")]),
    ("site:bbc.co.uk", Document("t", "b"), None),
]


@pytest.mark.parametrize(("query", "doc", "expected"), FIELDS, ids=[q for q, _, _ in FIELDS])
def test_fields(query: str, doc: Document, expected: object) -> None:
    assert run(query, doc, Lexicon()) == expected


def test_tag_hits_carry_the_tag_index() -> None:
    hits = explain(compile_rule("r", "tag:pacific", LEXICON), FULL, LEXICON)
    assert hits == [Hit("tag:pacific", "tag", 5, 12, "Pacific", None, 1)]


ENTITY_TITLE = "Chinese leader hosts Xi Xiaoxing and Putin"
ENTITY_BODY = "Vladimir Putin and Gazprom Neft in Ukraine, near the Black Sea. Michael Jordan watched. Russian officials."
ENTITY_DOC = Document(
    title=ENTITY_TITLE,
    body=ENTITY_BODY,
    mentions=(
        mention("title", ENTITY_TITLE, "Chinese leader", "Xi Jinping", "PERSON"),
        mention("title", ENTITY_TITLE, "Xi Xiaoxing", "Xi Xiaoxing", "PERSON"),
        mention("title", ENTITY_TITLE, "Putin", "Vladimir Putin", "PERSON"),
        mention("body", ENTITY_BODY, "Vladimir Putin", "Vladimir Putin", "PERSON"),
        mention("body", ENTITY_BODY, "Gazprom Neft", "Gazprom Neft", "ORG"),
        mention("body", ENTITY_BODY, "Ukraine", "Ukraine", "GPE"),
        mention("body", ENTITY_BODY, "Black Sea", "Black Sea", "LOC"),
        mention("body", ENTITY_BODY, "Michael Jordan", "Michael Jordan", "PERSON"),
        mention("body", ENTITY_BODY, "Russian", "Russian", "NORP"),
    ),
)

ENTITIES = [
    # a known name: only mentions of that entity, whatever their surface text
    ("person:Xi", [("title", "Chinese leader", "Xi Jinping")]),
    ('person:"Xi Jinping"', [("title", "Chinese leader", "Xi Jinping")]),
    ("person:Putin", [("title", "Putin", "Vladimir Putin"), ("body", "Vladimir Putin", "Vladimir Putin")]),
    ("person:Путин", [("title", "Putin", "Vladimir Putin"), ("body", "Vladimir Putin", "Vladimir Putin")]),
    # unknown names: whole words of the canonical name or the mention text
    ("person:Xiaoxing", [("title", "Xi Xiaoxing", "Xi Xiaoxing")]),
    ("person:Xiao", None),
    ("person:Xiao*", [("title", "Xi Xiaoxing", "Xi Xiaoxing")]),
    ("person:Vladimir", [("title", "Putin", "Vladimir Putin"), ("body", "Vladimir Putin", "Vladimir Putin")]),
    ("org:Gazprom", [("body", "Gazprom Neft", "Gazprom Neft")]),
    ("org:Gazprom*", [("body", "Gazprom Neft", "Gazprom Neft")]),
    ('org:"Gazprom Neft"', [("body", "Gazprom Neft", "Gazprom Neft")]),
    ('org:"Neft Gazprom"', None),
    ("org:/gaz.*/", [("body", "Gazprom Neft", "Gazprom Neft")]),
    ("org:Putin", None),
    ("person:Gazprom", None),
    ("place:Ukraine", [("body", "Ukraine", "Ukraine")]),
    ("place:Sea", [("body", "Black Sea", "Black Sea")]),
    ("entity:Russian", [("body", "Russian", "Russian")]),
    ("person:Russian", None),
    ("person:(Xiaoxing OR Gazprom)", [("title", "Xi Xiaoxing", "Xi Xiaoxing")]),
    # "Jordan" is a known GPE; as a person it falls back to word matching
    ("person:Jordan", [("body", "Michael Jordan", "Michael Jordan")]),
    ("place:Jordan", None),
    ("Xi AND NOT person:Xi", None),
]


@pytest.mark.parametrize(("query", "expected"), ENTITIES)
def test_entity_scopes(query: str, expected: object) -> None:
    hits = explain(compile_rule("r", query, LEXICON), ENTITY_DOC, LEXICON)
    if expected is None:
        assert hits is None
        return
    assert hits is not None
    for hit in hits:
        assert field_string(ENTITY_DOC, hit)[hit.start : hit.end] == hit.matched
    assert [(h.field, h.matched, h.entity) for h in hits] == expected


def test_person_xi_ignores_xi_xiaoxing() -> None:
    title = "Xi Xiaoxing wins physics prize"
    doc = Document(title, "", mentions=(mention("title", title, "Xi Xiaoxing", "Xi Xiaoxing", "PERSON"),))
    assert run("person:Xi", doc) is None
    assert run("Xi", doc) == [("title", "Xi")]  # the bare word is a text search


ALIASES = [
    ("Putin", "Путин прибыл", [("body", "Путин", "Vladimir Putin")]),
    ("Putin", "Vladimir Putin spoke", [("body", "Vladimir Putin", "Vladimir Putin")]),
    ("Putin", "Putin spoke", [("body", "Putin", None)]),
    ('"Vladimir Putin"', "Путин прибыл", [("body", "Путин", "Vladimir Putin")]),
    ("Xi", "President Xi said", [("body", "President Xi", "Xi Jinping")]),
    ("Xi", "Xi Jinping said", [("body", "Xi Jinping", "Xi Jinping")]),
    ("title:Putin", "Путин прибыл", None),  # body only; the title is empty
    ("author:Putin", "Путин прибыл", None),
    ("Putin*", "Путин прибыл", None),  # prefixes are not names
    ("Jinping", "President Xi said", None),  # not a known name on its own
]


@pytest.mark.parametrize(("query", "text", "expected"), ALIASES)
def test_bare_known_names_match_their_aliases(query: str, text: str, expected: object) -> None:
    doc = body(text)
    hits = explain(compile_rule("r", query, LEXICON), doc, LEXICON)
    if expected is None:
        assert hits is None
        return
    assert hits is not None
    assert [(h.field, doc.body[h.start : h.end], h.entity) for h in hits] == expected


def test_title_scope_also_expands_known_names() -> None:
    assert run("title:Putin", Document("Путин прибыл", "")) == [("title", "Путин")]


def test_hits_are_positive_evidence_in_reading_order() -> None:
    doc = Document(title="Putin and Xi", body="Xi spoke. Putin listened.", tags=("xi",))
    hits = explain(compile_rule("r", "(Xi OR tag:xi) AND Putin AND NOT sport", Lexicon()), doc, Lexicon())
    assert hits is not None
    assert [(h.term, h.field, h.start, h.end) for h in hits] == [
        ("Putin", "title", 0, 5),
        ("Xi", "title", 10, 12),
        ("Xi", "body", 0, 2),
        ("Putin", "body", 10, 15),
        ("tag:xi", "tag", 0, 2),
    ]
    assert hits[0].to_dict() == {
        "term": "Putin", "field": "title", "start": 0, "end": 5,
        "matched": "Putin", "entity": None, "index": None,
    }


BOOLEANS = [
    ("NOT sport", "Xi and Putin", []),
    ("NOT sport", "sport news", None),
    ("-sport", "sports news", []),
    ("Xi AND NOT sport", "Xi plays sport", None),
    ("Xi -(sport OR football)", "Xi loves football", None),
    ("Xi -(sport OR football)", "Xi loves tennis", [("body", "Xi")]),
    ("Xi OR Biden", "Biden spoke", [("body", "Biden")]),
    ("Xi Biden", "Biden spoke", None),
    ("a OR b AND NOT c", "a c", [("body", "a")]),
    ("a OR b AND NOT c", "b c", None),
    ("NOT NOT sport", "sport", []),
]


@pytest.mark.parametrize(("query", "text", "expected"), BOOLEANS)
def test_boolean_logic(query: str, text: str, expected: object) -> None:
    assert run(query, body(text), Lexicon()) == expected


def test_explain_compiles_a_rule_built_without_a_plan() -> None:
    rule = CompiledRule("r", "Putin", parse_query("Putin"))
    hits = explain(rule, body("Путин"), LEXICON)
    assert hits is not None and hits[0].entity == "Vladimir Putin"


def test_document_from_item() -> None:
    item = Item(
        guid="1", link="https://example.org/a", title="T", text="B", author=None,
        tags=("x",), published_at=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    m = Mention("B", "B", "ORG", "body", 0, 1)
    assert Document.from_item(item, feed="wire", mentions=[m]) == Document(
        "T", "B", "", "wire", ("x",), "https://example.org/a", (m,)
    )


def test_lexicon_lookups() -> None:
    assert LEXICON.canonical_of("president xi").name == "Xi Jinping"  # type: ignore[union-attr]
    assert LEXICON.canonical_of("Xi Xiaoxing") is None
    assert LEXICON.names_of("Vladimir Putin") == ("Vladimir Putin", "Putin", "Путин")
    assert LEXICON.names_of("Nobody") == ("Nobody",)


# --- the index ---------------------------------------------------------------


def test_index_skips_rules_whose_words_are_absent_and_keeps_negations() -> None:
    rules = [
        compile_rule("xi", "Xi AND Putin", LEXICON),
        compile_rule("no-sport", "NOT sport", LEXICON),
        compile_rule("regex", "/pu[ts]in/", LEXICON),
        compile_rule("gaz", "org:Gazprom", LEXICON),
        compile_rule("short-prefix", "ne*", LEXICON),
        compile_rule("either", "Biden OR -tennis", LEXICON),
    ]
    index = RuleIndex(rules, LEXICON)
    assert [r.name for r in index.unindexed] == ["no-sport", "regex", "short-prefix", "either"]
    doc = body("Biden watched tennis")
    assert [r.name for r in index.candidates(doc)] == ["no-sport", "regex", "short-prefix", "either"]
    assert [(r.name, [h.matched for h in hits]) for r, hits in index.match(doc)] == [
        ("no-sport", []),
        ("either", ["Biden"]),
    ]
    assert [r.name for r in index.candidates(body("Путин and Xi"))][0] == "xi"
    assert [r.name for r, _ in index.match(body("Путин and Xi"))] == ["xi", "no-sport", "either"]


UNINDEXED = [
    ("NOT sport", True),
    ("-opinion -sport", True),
    ("Xi OR NOT sport", True),
    ("/pu[ts]in/", True),  # no literal start of three letters
    ("/[a-z]+gate/", True),
    ("/abc|xyz/", True),
    ("ne*", True),
    ("Xi AND NOT sport", False),
    ("/covid-?19/", False),
    ("/(ransom|mal)ware/", False),
    ("negotiat*", False),
    ("site:bbc.co.uk", False),
    ("person:Xi", False),
    ("tag:/spo.*/", False),
]


@pytest.mark.parametrize(("query", "unindexed"), UNINDEXED)
def test_which_rules_the_index_cannot_file(query: str, unindexed: bool) -> None:
    index = RuleIndex([compile_rule("r", query, LEXICON)], LEXICON)
    assert bool(index.unindexed) is unindexed


CANDIDATES = [
    # (query, document, is a candidate)
    ("/covid-?19/", body("Covid-19 cases"), True),
    ("/covid-?19/", body("flu cases"), False),
    ("/(ransom|mal)ware/", body("new malware"), True),
    ('"peace talks"', body("talks about peace"), True),  # words present, order checked later
    ('"peace talks"', body("peace at last"), False),  # every word of a phrase is required
    ("title:Putin", Document("Xi visits", "Putin waits"), False),
    ("title:Putin", Document("Putin visits", ""), True),
    ("Putin", body("Путин прибыл"), True),  # through the alias
    ("person:Xi", ENTITY_DOC, True),  # a mention of Xi Jinping
    ("person:Xi", Document("Xi Xiaoxing wins", "", mentions=(Mention("Xi Xiaoxing", "Xi Xiaoxing", "PERSON", "title", 0, 11),)), False),
    ("site:bbc.co.uk", Document("", "", link="https://www.bbc.co.uk/x"), True),
    ("site:bbc.co.uk", Document("", "", link="https://cnn.com/x"), False),
]


@pytest.mark.parametrize(("query", "doc", "candidate"), CANDIDATES)
def test_index_candidates(query: str, doc: Document, candidate: bool) -> None:
    index = RuleIndex([compile_rule("r", query, LEXICON)], LEXICON)
    assert bool(index.candidates(doc)) is candidate


def test_repeated_terms_give_each_hit_once() -> None:
    doc = body("Xi met Putin")
    for query in ["Xi OR (Xi AND Putin)", "Xi NEAR/3 Putin AND Xi", "(Xi NEAR/1 Putin) OR (Putin NEAR/1 Xi)"]:
        assert run(query, doc, Lexicon()) == [("body", "Xi"), ("body", "Putin")], query


def test_rules_with_the_same_query_get_their_own_hit_lists() -> None:
    rules = [compile_rule("a", "Xi", LEXICON), compile_rule("b", "Xi", LEXICON)]
    (_, first), (_, second) = RuleIndex(rules, LEXICON).match(body("Xi spoke"))
    assert first == second and first is not second


PEOPLE = ["Xi", "Putin", "Путин", "Vladimir Putin", "Zelensky", "Biden", "Xi Xiaoxing", "Michael Jordan"]
WORDS = ["peace", "talks", "ceasefire", "sport", "trade", "summit", "negotiations", "renegotiate", "and", "the"]
PLACES = ["Ukraine", "Jordan", "São Paulo", "Black Sea"]
ORGS = ["Gazprom", "Gazprom Neft", "NATO"]


def random_term(rng: random.Random) -> str:
    word = rng.choice(WORDS + PEOPLE + PLACES)
    kind = rng.random()
    if kind < 0.35:
        return word.split()[0]
    if kind < 0.5:
        return f'"{word}"'
    if kind < 0.6:
        return word.split()[0][: rng.randint(1, 5)] + "*"
    if kind < 0.65:
        return f"/{word.split()[0][:3].lower()}.*/"
    if kind < 0.72:
        return f"person:{rng.choice(PEOPLE).split()[-1]}"
    if kind < 0.77:
        return f"org:{rng.choice(ORGS).split()[0]}"
    if kind < 0.82:
        return f"place:{rng.choice(PLACES).split()[0]}"
    if kind < 0.86:
        return f"title:{word.split()[0]}"
    if kind < 0.89:
        return rng.choice(["tag:asia", "site:bbc.co.uk", "feed:wire", "author:doe", "site:example.org"])
    return f"entity:{rng.choice(PEOPLE + ORGS + PLACES).split()[0]}"


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if depth > 2 or roll < 0.35:
        return random_term(rng)
    if roll < 0.55:
        return f"{random_query(rng, depth + 1)} AND {random_query(rng, depth + 1)}"
    if roll < 0.75:
        return f"({random_query(rng, depth + 1)} OR {random_query(rng, depth + 1)})"
    if roll < 0.85:
        return f"NOT {random_term(rng)}"
    left, right = rng.choice(WORDS + PEOPLE), rng.choice(WORDS + PEOPLE)
    return f'"{left}" NEAR/{rng.randint(0, 4)} "{right}"'


def random_document(rng: random.Random) -> Document:
    pool = WORDS + PEOPLE + PLACES + ORGS + ["said", "on", "Monday", "Xiaomi", "Xi'an"]
    title = " ".join(rng.choice(pool) for _ in range(rng.randint(2, 6)))
    text = ". ".join(" ".join(rng.choice(pool) for _ in range(rng.randint(3, 9))) for _ in range(rng.randint(1, 4)))
    mentions = []
    for string, name in ((title, "title"), (text, "body")):
        for surface, canonical, label in [
            ("Putin", "Vladimir Putin", "PERSON"),
            ("Xi Xiaoxing", "Xi Xiaoxing", "PERSON"),
            ("Xi", "Xi Jinping", "PERSON"),
            ("Gazprom", "Gazprom", "ORG"),
            ("Ukraine", "Ukraine", "GPE"),
            ("Black Sea", "Black Sea", "LOC"),
            ("Jordan", "Jordan", "GPE"),
        ]:
            at = string.find(surface)
            if at >= 0 and rng.random() < 0.8:
                mentions.append(Mention(surface, canonical, label, name, at, at + len(surface)))
    return Document(
        title=title,
        body=text,
        author=rng.choice(["", "Jane Doe", "John Smith"]),
        feed=rng.choice(["wire", "bbc-world"]),
        tags=tuple(rng.sample(["Asia", "Europe", "sport"], rng.randint(0, 2))),
        link=rng.choice(["", "https://www.bbc.co.uk/n/1", "https://example.org/x", "https://news.example.org/y"]),
        mentions=tuple(mentions),
    )


def test_index_matches_exactly_what_naive_evaluation_matches() -> None:
    rng = random.Random(20240601)
    rules = [compile_rule(f"r{i}", random_query(rng), LEXICON) for i in range(400)]
    index = RuleIndex(rules, LEXICON)
    assert len(index.unindexed) < len(rules) / 2  # the index has something to do
    docs = [random_document(rng) for _ in range(300)]
    matched = 0
    skipped = 0
    for doc in docs:
        expected = index.match_naive(doc)
        assert index.match(doc) == expected
        matched += len(expected)
        skipped += len(rules) - len(index.candidates(doc))
    assert matched > 1000  # the rules and documents do overlap
    assert skipped > 10000  # and the index does prune


def test_index_and_explain_agree() -> None:
    rng = random.Random(7)
    rules = [compile_rule(f"r{i}", random_query(rng), LEXICON) for i in range(100)]
    index = RuleIndex(rules, LEXICON)
    for _ in range(50):
        doc = random_document(rng)
        by_explain = [(r, hits) for r in rules if (hits := explain(r, doc, LEXICON)) is not None]
        assert index.match(doc) == by_explain
