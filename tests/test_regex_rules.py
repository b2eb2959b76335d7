"""Regex rules run on RE2: no pattern can stall the daemon, unsupported syntax is a located
config error, and costly patterns are named by `check` and `rules lint`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, DaemonProcess, Story, rss, run_cli, write_config

from monitor.errors import RuleSyntaxError
from monitor.rules.document import Document, Lexicon
from monitor.rules.evaluate import compile_rule, explain
from monitor.rules.regex import compile_word_regex
from monitor.rules.syntax import parse_query

# Nested repetition: a backtracking engine tries 2^34 ways to split these a's before giving up.
CATASTROPHIC = "/(a+)+b/"
HOSTILE = Story("hostile-1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!")


def _config(tmp_path: Path, feeds: list[dict[str, object]], rules: list[dict[str, object]], **extra: object) -> Path:
    return write_config(tmp_path / "config", feeds=feeds, rules=rules, entities=DEFAULT_ENTITIES, **extra)


def test_a_catastrophic_regex_does_not_hold_up_the_daemon(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/hostile.xml", rss(HOSTILE))
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    config = _config(
        tmp_path,
        feeds=[
            {"name": "hostile", "url": feed_server.url("/hostile.xml"), "alert_first_fetch": True},
            {"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True},
        ],
        rules=[
            {"name": "backtrack", "query": CATASTROPHIC, "notify": ["hook"]},
            {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]},
        ],
        channels={"hook": {"url": webhook.json_url("/hook")}},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    # With a backtracking engine the hostile item takes minutes to match; the analysis of
    # every feed waits behind it and this alert never comes in time.
    [request] = webhook.wait_for(1, timeout=120)
    assert "xi-putin" in json.dumps(request.json)
    daemon.wait_for_log(r"poll\.done feed=hostile", timeout=60)
    daemon.wait_for_log(r"poll\.done feed=wire", timeout=60)


def test_rules_test_with_a_catastrophic_regex_answers_promptly(tmp_path, feed_server):
    feed_server.route("/hostile.xml", rss(HOSTILE, XI_PUTIN_CALL))
    config = _config(
        tmp_path,
        feeds=[{"name": "hostile", "url": feed_server.url("/hostile.xml")}],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
    )
    polled = run_cli("poll", "--once", config=config, timeout=120)
    assert polled.returncode == 0, polled.stderr
    # The subprocess timeout is what a backtracking engine blows (minutes for 34 a's).
    tested = run_cli("rules", "test", CATASTROPHIC, config=config, timeout=90)
    assert tested.returncode == 0, tested.stderr
    assert "0 of 2 stored items match" in tested.stdout
    matching = run_cli("rules", "test", "/a+!?/", "--json", config=config, timeout=90)
    assert matching.returncode == 0, matching.stderr
    assert [json.loads(line)["guid"] for line in matching.stdout.splitlines()] == ["hostile-1"]


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("Putin AND /pu(?=t)in/", 14, "lookahead (?=...) is not supported; rules use RE2 syntax"),
        ("/(?<!x)putin/", 2, "negative lookbehind (?<!...) is not supported; rules use RE2 syntax"),
        ("Xi NEAR/3 /(?P<a>pu)t(?P=a)/", 22, "backreference (?P=name) is not supported; rules use RE2 syntax"),
        ("/xi++/", 4, "possessive quantifier ++ is not supported; rules use RE2 syntax"),
        ("/[a-z]{1001}/", 1, "invalid regex: bad repetition {1001} (at most 1000)"),
    ],
)
def test_check_refuses_what_re2_cannot_run_at_its_position(tmp_path, query, column, message):
    config = _config(
        tmp_path,
        feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}],
        rules=[{"name": "r", "query": query, "notify": ["console"]}],
    )
    checked = run_cli("check", config=config)
    assert checked.returncode == 1
    rules_file = config / "rules.yaml"
    lines = rules_file.read_text().splitlines()
    line = next(n for n, text in enumerate(lines, 1) if '"query"' in text)
    first = lines[line - 1].index('"query": "') + len('"query": "') + 1  # the file column of the query's column 1
    assert f"{rules_file}:{line}:{first + column - 1}: rule 'r': {message}" in checked.stderr, checked.stderr


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        (r"/(pu)t\1n/", 7, r"backreference \1 is not supported"),
        (r"/a\/b(?>c)/", 6, "atomic group (?>...) is not supported"),  # an escaped / counts two columns
        (r"/a\/\/b\Bc/", 8, r"\B is not supported"),
    ],
)
def test_unsupported_constructs_are_located_in_the_query(query, column, message):
    with pytest.raises(RuleSyntaxError) as raised:
        parse_query(query)
    assert raised.value.column == column and raised.value.message.startswith(message), raised.value


def test_check_and_lint_warn_about_costly_regexes(tmp_path):
    config = _config(
        tmp_path,
        feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}],
        rules=[
            {"name": "dfa", "query": "Putin OR /[ab]*a[ab]{150}/", "notify": ["console"]},
            {"name": "big", "query": r"title:/[\p{L}]{5}x/", "notify": ["console"]},
            {"name": "fine", "query": r"/\bpu[ts]in\b/ OR /\w+ski/", "notify": ["console"]},
        ],
    )
    checked = run_cli("check", config=config)
    assert checked.returncode == 0, checked.stderr
    assert "OK:" in checked.stdout
    warnings = [line for line in checked.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 2, checked.stderr
    assert "rules.yaml:5:37: warning: rule 'dfa': /[ab]*a[ab]{150}/: costly regex: a repetition of 150" in warnings[0]
    assert "rule 'big': title:/[\\p{L}]{5}x/: costly regex: it compiles to" in warnings[1]

    assert run_cli("feeds", "list", config=config).returncode == 0  # creates the database lint reads
    linted = run_cli("rules", "lint", config=config)
    assert linted.returncode == 0, linted.stderr
    assert "rules.yaml:5:37: warning: rule 'dfa': /[ab]*a[ab]{150}/: costly regex" in linted.stdout
    assert "warning: rule 'big'" in linted.stdout and "'fine'" not in linted.stdout.replace("info: rule 'fine'", "")


# --- what the rewrite for RE2 keeps of the meaning rules always had -------------------------


@pytest.mark.parametrize(
    ("pattern", "word", "matches"),
    [
        (r"\bпутин\b", "путин", True),  # a word boundary at the ends of a word in any script
        (r"\w+ski", "путинski", True),  # \w covers every script
        (r"\w+", "a-b", False),
        (r"[\w]+", "ölçü", True),
        (r"\d{2}", "٣٤", True),  # Unicode digits, as Python's \d
        (r"\D+", "٣", False),
        ("a{,3}", "aaa", True),  # Python's {,n} is {0,n}
        (r"x\Z", "x", True),
        (r"\u00e9t\u00e9", "été", True),
        ("ÉTÉ", "été", True),  # Unicode case folding
        (r"\p{Cyrillic}+", "кремль", True),
    ],
)
def test_python_flavoured_patterns_keep_their_meaning(pattern, word, matches):
    assert compile_word_regex(pattern).fullmatch(word) is matches


def test_a_regex_rule_still_matches_whole_words_with_offsets():
    lexicon = Lexicon()
    rule = compile_rule("r", r"/\bkyiv\w*/", lexicon)
    hits = explain(rule, Document(title="", body="Talks in Kyiv's centre, and Kyivan trains"), lexicon)
    assert hits is not None and [hit.matched for hit in hits] == ["Kyiv", "Kyivan"]
