from __future__ import annotations

import pytest

from monitor.errors import RuleSyntaxError
from monitor.rules.syntax import And, Near, Not, Or, Term, parse_query, terms_of


def w(value: str, column: int, field: str = "text") -> Term:
    return Term(field, "word", value, column)


PARSES = [
    # terms
    ("Putin", w("Putin", 1)),
    ('"peace talks"', Term("text", "phrase", "peace talks", 1)),
    ("negotiat*", Term("text", "prefix", "negotiat", 1)),
    ("/pu[ts]in/", Term("text", "regex", "pu[ts]in", 1)),
    (r"/a\/b/", Term("text", "regex", "a/b", 1)),
    (r'"say \"no\""', Term("text", "phrase", 'say "no"', 1)),
    ("Xi-Putin", w("Xi-Putin", 1)),
    ("O'Brien", w("O'Brien", 1)),
    # boolean operators
    ("Xi AND Putin", And((w("Xi", 1), w("Putin", 8)))),
    ("Xi OR Putin", Or((w("Xi", 1), w("Putin", 7)))),
    ("NOT sport", Not(w("sport", 5))),
    ("Xi NOT sport", And((w("Xi", 1), Not(w("sport", 8))))),
    ("Xi -sport", And((w("Xi", 1), Not(w("sport", 5))))),
    ("-(sport OR football)", Not(Or((w("sport", 3), w("football", 12))))),
    ('-"world cup"', Not(Term("text", "phrase", "world cup", 2))),
    ("Xi Putin", And((w("Xi", 1), w("Putin", 4)))),
    ("Xi AND Putin AND Biden", And((w("Xi", 1), w("Putin", 8), w("Biden", 18)))),
    ("bbc-world", w("bbc-world", 1)),
    # lower-case keywords are words
    ("war and peace", And((w("war", 1), w("and", 5), w("peace", 9)))),
    ("cats or dogs", And((w("cats", 1), w("or", 6), w("dogs", 9)))),
    ("not", w("not", 1)),
    # precedence: NOT > AND > OR
    ("a OR b AND NOT c", Or((w("a", 1), And((w("b", 6), Not(w("c", 16))))))),
    ("a AND b OR c", Or((And((w("a", 1), w("b", 7))), w("c", 12)))),
    ("(a OR b) AND c", And((Or((w("a", 2), w("b", 7))), w("c", 14)))),
    ("NOT a OR b", Or((Not(w("a", 5)), w("b", 10)))),
    ("a OR NOT b", Or((w("a", 1), Not(w("b", 10))))),
    ("NOT NOT a", Not(Not(w("a", 9)))),
    # fields
    ("title:Xi", w("Xi", 7, "title")),
    ("text:Xi", w("Xi", 6, "text")),
    ("author:Doe", w("Doe", 8, "author")),
    ("feed:bbc-world", w("bbc-world", 6, "feed")),
    ("tag:Asia", w("Asia", 5, "tag")),
    ("site:bbc.co.uk", w("bbc.co.uk", 6, "site")),
    ("site:https://www.bbc.co.uk/news", w("https://www.bbc.co.uk/news", 6, "site")),
    ("Title:Xi", w("Xi", 7, "title")),
    ('title:"peace talks"', Term("title", "phrase", "peace talks", 7)),
    ("title:negotiat*", Term("title", "prefix", "negotiat", 7)),
    ("title:/pu[ts]in/", Term("title", "regex", "pu[ts]in", 7)),
    ("title:(Xi OR Putin)", Or((w("Xi", 8, "title"), w("Putin", 14, "title")))),
    ("title:(Xi OR body)", Or((w("Xi", 8, "title"), w("body", 14, "title")))),
    ("title:(Xi OR person:Putin)", Or((w("Xi", 8, "title"), w("Putin", 21, "person")))),
    ("-title:sport", Not(w("sport", 8, "title"))),
    ("title: Xi", w("Xi", 8, "title")),
    # entity scopes
    ("person:Putin", w("Putin", 8, "person")),
    ("org:Gazprom*", Term("org", "prefix", "Gazprom", 5)),
    ("place:Ukraine", w("Ukraine", 7, "place")),
    ("entity:NATO", w("NATO", 8, "entity")),
    ('person:"Vladimir Putin"', Term("person", "phrase", "Vladimir Putin", 8)),
    ("person:(Xi OR Putin)", Or((w("Xi", 9, "person"), w("Putin", 15, "person")))),
    ("place:/ukrain.*/", Term("place", "regex", "ukrain.*", 7)),
    # proximity
    ("Xi NEAR/10 Putin", Near(w("Xi", 1), w("Putin", 12), 10)),
    ("Xi NEAR/0 Putin", Near(w("Xi", 1), w("Putin", 11), 0)),
    ('"peace talks" NEAR/5 negotiat*', Near(Term("text", "phrase", "peace talks", 1), Term("text", "prefix", "negotiat", 22), 5)),
    ("(Xi OR Putin) NEAR/3 summit", Near(Or((w("Xi", 2), w("Putin", 8))), w("summit", 22), 3)),
    ("a NEAR/2 b NEAR/3 c", Near(Near(w("a", 1), w("b", 10), 2), w("c", 19), 3)),
    ("person:Xi NEAR/10 person:Putin", Near(w("Xi", 8, "person"), w("Putin", 26, "person"), 10)),
    # NEAR binds tighter than NOT and AND
    ("NOT a NEAR/2 b", Not(Near(w("a", 5), w("b", 14), 2))),
    ("x a NEAR/2 b", And((w("x", 1), Near(w("a", 3), w("b", 12), 2)))),
    # punctuation inside a word stays in the word; '+' is harmless
    ("+Xi", w("+Xi", 1)),
    ("10:30", w("10:30", 1)),
]


@pytest.mark.parametrize(("query", "expected"), PARSES, ids=[q for q, _ in PARSES])
def test_parse(query: str, expected: object) -> None:
    assert parse_query(query) == expected


ERRORS = [
    ("", 1, "empty query"),
    ("   ", 1, "empty query"),
    ("Xi AND", 7, "expected a term after AND"),
    ("Xi OR", 6, "expected a term after OR"),
    ("NOT", 4, "expected a term after NOT"),
    ("Xi AND OR Putin", 8, "expected a term after AND, found OR"),
    ("Xi OR OR Putin", 7, "expected a term after OR, found OR"),
    ("(Xi AND)", 8, "expected a term after AND, found ')'"),
    ("AND Xi", 1, "expected a term before AND"),
    ("OR Xi", 1, "expected a term before OR"),
    ("NEAR/5 Xi", 1, "expected a term before NEAR/5"),
    ("Xi (Putin", 10, "missing closing parenthesis for '(' at column 4"),
    ("((Xi) OR Putin", 15, "missing closing parenthesis for '(' at column 1"),
    ("Xi)", 3, "unexpected ')'"),
    (")", 1, "unexpected ')'"),
    ("Xi OR Putin) AND x", 12, "unexpected ')'"),
    ("()", 2, "empty parentheses: expected a term after '('"),
    ('"peace talks', 1, 'unterminated phrase, missing closing "'),
    ('Xi AND "peace', 8, 'unterminated phrase, missing closing "'),
    ('""', 1, "empty phrase"),
    ('Xi " "', 4, "empty phrase"),
    ('"!!"', 1, 'phrase "!!" has no letters or digits to match'),
    ("foo:bar", 1, "unknown field 'foo'; expected one of title, text, author, feed, tag, site, person, org, place, entity"),
    ("Xi AND body:x", 8, "unknown field 'body'; expected one of title, text, author, feed, tag, site, person, org, place, entity"),
    ("std::vector", 1, "unknown field 'std'; expected one of title, text, author, feed, tag, site, person, org, place, entity"),
    ("title:", 7, "expected a term after 'title:'"),
    ("title: AND x", 8, "expected a term after 'title:', found AND"),
    ("title:-Xi", 7, "a field cannot be negated from inside; write -title:term"),
    ("Xi NEAR/x Putin", 4, "expected NEAR/<number of words>, e.g. NEAR/10"),
    ("Xi NEAR Putin", 4, "expected NEAR/<number of words>, e.g. NEAR/10"),
    ("Xi NEAR/", 4, "expected NEAR/<number of words>, e.g. NEAR/10"),
    ("Xi NEAR/5", 10, "expected a term after NEAR/5"),
    ("Xi NEAR/5 NOT Putin", 11, "expected a term after NEAR/5, found NOT"),
    ("Xi NEAR/3 (a AND b)", 11, "NEAR needs a term, phrase, prefix, regex or an OR-group on each side"),
    ("(a -b) NEAR/3 c", 1, "NEAR needs a term, phrase, prefix, regex or an OR-group on each side"),
    ("site:bbc.co.uk NEAR/3 c", 1, "site: has no word positions, so it cannot be used with NEAR"),
    ("*", 1, "'*' must follow a word, e.g. negotiat*"),
    ("Xi AND *", 8, "'*' must follow a word, e.g. negotiat*"),
    ("ne*go", 3, "'*' is only allowed at the end of a word, e.g. negotiat*"),
    ("*tiat", 1, "'*' is only allowed at the end of a word, e.g. negotiat*"),
    ("/a b/", 1, "a regex matches one word, so it cannot contain spaces"),
    ("Xi /pu[tsin/", 4, "invalid regex: unterminated character set"),
    ("/a(/", 1, "invalid regex: missing ), unterminated subpattern"),
    ("/putin", 1, "unterminated regex, missing closing /"),
    ("//", 1, "empty regex"),
    ("/putin/i", 8, "expected a space or ')' after the regex (regexes are always case-insensitive)"),
    ("-", 1, "expected a term right after '-' (write -term or -(group))"),
    ("Xi - Putin", 4, "expected a term right after '-' (write -term or -(group))"),
    ("Xi && Putin", 4, "unexpected '&&'; write AND"),
    ("Xi || Putin", 4, "unexpected '||'; write OR"),
    ("Xi ... Putin", 4, "'...' has no letters or digits to match"),
    ('"peace talks"~5', 14, "'~' proximity is not supported; use a NEAR/n b"),
    ("(" * 65 + "x" + ")" * 65, 65, "query nested more than 64 levels deep"),
]


@pytest.mark.parametrize(("query", "column", "message"), ERRORS, ids=[q[:30] for q, _, _ in ERRORS])
def test_syntax_errors(query: str, column: int, message: str) -> None:
    with pytest.raises(RuleSyntaxError) as caught:
        parse_query(query)
    assert (caught.value.message, caught.value.column) == (message, column)
    assert str(caught.value) == f"column {column}: {message}"


def test_syntax_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_query("Xi AND")


def test_terms_of_lists_every_term_in_query_order() -> None:
    node = parse_query('place:Ukraine AND ("peace talks" OR ceasefire OR negotiat*) AND NOT sport')
    assert [(t.field, t.kind, t.value) for t in terms_of(node)] == [
        ("place", "word", "Ukraine"),
        ("text", "phrase", "peace talks"),
        ("text", "word", "ceasefire"),
        ("text", "prefix", "negotiat"),
        ("text", "word", "sport"),
    ]
    assert [t.label for t in terms_of(parse_query("Xi NEAR/3 title:/pu[ts]in/"))] == ["Xi", "title:/pu[ts]in/"]


LABELS = [
    ("Putin", "Putin"),
    ("person:Putin", "person:Putin"),
    ('"peace talks"', '"peace talks"'),
    ('title:"peace talks"', 'title:"peace talks"'),
    ("negotiat*", "negotiat*"),
    ("/pu[ts]in/", "/pu[ts]in/"),
    (r"/a\/b/", r"/a\/b/"),
]


@pytest.mark.parametrize(("query", "label"), LABELS)
def test_term_label_is_the_term_as_written(query: str, label: str) -> None:
    (term,) = terms_of(parse_query(query))
    assert term.label == label


def test_ast_nodes_are_frozen_and_hashable() -> None:
    node = parse_query("a OR b AND NOT c")
    assert hash(node) == hash(parse_query("a OR b AND NOT c"))
    with pytest.raises(AttributeError):
        node.children = ()  # type: ignore[misc]
