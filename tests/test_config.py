from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.assembly import assemble
from monitor.config import load_config, parse_size
from monitor.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent

MONITOR = """\
database: {db}
channels:
  desk: {{url: "json://127.0.0.1:9/hook"}}
feeds:
  - {{name: wire, url: "http://127.0.0.1:9/wire.xml", interval: 5m, tags: [wire]}}
"""
RULES = """\
rules:
  - name: xi-putin
    query: Xi AND Putin
    notify: [desk, console]
"""


def write(directory: Path, monitor: str | None = None, rules: str | None = None, entities: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "monitor.yaml").write_text(monitor if monitor is not None else MONITOR.format(db=directory / "db.sqlite"))
    (directory / "rules.yaml").write_text(rules if rules is not None else RULES)
    if entities is not None:
        (directory / "entities.yaml").write_text(entities)
    return directory


def problems(directory: Path, environ: dict[str, str] | None = None) -> list[str]:
    """Every problem ``check`` reports: the config's shapes, then what its values mean when assembled."""
    with pytest.raises(ConfigError) as caught:
        assemble(load_config(directory, environ=environ or {}))
    return caught.value.problems


def test_the_shipped_default_config_is_valid():
    config = load_config(REPO / "config", environ={})
    assert any(rule.name == "xi-putin" and rule.query == "Xi AND Putin" for rule in config.rules)
    assert "console" in config.channel_names
    assert len(config.settings.feeds) >= 4
    assert all(feed.url.startswith("https://") for feed in config.settings.feeds)


def test_a_valid_directory_loads_with_typed_values(tmp_path):
    config = load_config(write(tmp_path), environ={})
    feed = config.feed("wire")
    assert feed is not None and feed.interval == timedelta(minutes=5) and feed.tags == ("wire",)
    assert feed.alert_first_fetch is False
    assert config.settings.poll.default_interval == timedelta(minutes=10)
    assert config.settings.poll.max_bytes == 10 * 1024 * 1024
    assert config.rules[0].notify == ("desk", "console")
    assert config.summary() == "1 feed, 1 rule, 2 channels, 0 entities"


def test_environment_variables_are_substituted(tmp_path):
    monitor = 'channels:\n  desk: {url: "json://${HOOK_HOST}/hook"}\nfeeds: []\n'
    config = load_config(write(tmp_path, monitor=monitor), environ={"HOOK_HOST": "127.0.0.1:8080"})
    assert config.channel_url("desk") == "json://127.0.0.1:8080/hook"


def test_a_missing_environment_variable_points_at_its_line(tmp_path):
    monitor = 'channels:\n  desk: {url: "json://${HOOK_HOST}/hook"}\n'
    [problem] = problems(write(tmp_path, monitor=monitor))
    assert problem == f"{tmp_path / 'monitor.yaml'}:2:15: environment variable HOOK_HOST is not set (used as ${{HOOK_HOST}})"


def test_broken_yaml_gives_line_and_column(tmp_path):
    # Placed at the bracket that is never closed, not at the end of the file where the parser gave up.
    [problem] = problems(write(tmp_path, rules="rules:\n  - name: a\n    query: [unclosed\n"))
    assert problem == f"{tmp_path / 'rules.yaml'}:3:12: a list in [ ] starts here and is never closed"


def test_an_unknown_key_is_an_error_at_its_position(tmp_path):
    monitor = "poll:\n  concurency: 4\n"
    [problem] = problems(write(tmp_path, monitor=monitor))
    # The section names the place, the nearest allowed key the fix.
    assert problem == f"{tmp_path / 'monitor.yaml'}:2:3: poll: unknown key 'concurency'; did you mean 'concurrency'?"


def test_a_rule_syntax_error_points_into_the_query(tmp_path):
    rules = "rules:\n  - name: broken\n    query: Xi AND\n    notify: [console]\n"
    [problem] = problems(write(tmp_path, rules=rules))
    path, line, column, message = problem.split(":", 3)
    assert (path, line) == (str(tmp_path / "rules.yaml"), "3")
    # "Xi AND" starts at column 12; the term that is missing after AND is at its end.
    assert int(column) >= 12 + len("Xi AND") - 1
    assert "rule 'broken'" in message and "AND" in message


def test_a_quoted_query_error_column_counts_the_quote(tmp_path):
    rules = "rules:\n  - name: q\n    query: 'Xi AND (Putin'\n    notify: [console]\n"
    [problem] = problems(write(tmp_path, rules=rules))
    line, column = problem.split(":")[1:3]
    assert line == "3"
    # The query text starts at file column 13 (after the quote); the error is at its end, query column 14.
    assert int(column) == 13 + len("Xi AND (Putin")


def test_a_rule_naming_an_unknown_channel(tmp_path):
    rules = "rules:\n  - name: r\n    query: Xi\n    notify: [console, slack-desk]\n"
    [problem] = problems(write(tmp_path, rules=rules))
    assert problem.startswith(f"{tmp_path / 'rules.yaml'}:4:23: rule 'r' notifies unknown channel 'slack-desk'")


def test_all_problems_are_reported_together(tmp_path):
    monitor = "poll: {default_interval: soon}\nfeeds:\n  - {name: a, url: 'ftp://example.org/feed'}\n  - {name: a, url: 'http://example.org/b'}\n"
    rules = "rules:\n  - name: r\n    query: Xi\n    notify: [nobody]\n  - name: r\n    query: Putin\n    notify: [console]\n"
    found = problems(write(tmp_path, monitor=monitor, rules=rules))
    text = "\n".join(found)
    # A feed is named by its name, not its index; a duration problem says what one looks like.
    assert "poll.default_interval: expected a duration like 30s, 10m, 6h or 1d, got 'soon'" in text
    assert "feed 'a': url: feed URL ftp://example.org/feed: only http and https URLs are supported, not ftp" in text
    assert "duplicate rule name 'r'" in text
    assert len(found) == 3


def test_duplicate_feed_names(tmp_path):
    monitor = "feeds:\n  - {name: a, url: 'http://example.org/a'}\n  - {name: a, url: 'http://example.org/b'}\n"
    rules = "rules: []\n"
    [problem] = problems(write(tmp_path, monitor=monitor, rules=rules))
    assert problem == f"{tmp_path / 'monitor.yaml'}:3:12: duplicate feed name 'a'"


def test_an_alias_naming_two_entities_is_an_error(tmp_path):
    entities = "entities:\n  - {name: Xi Jinping, type: PERSON, aliases: [Xi]}\n  - {name: Xi Xiaoxing, type: PERSON, aliases: [Xi]}\n"
    [problem] = problems(write(tmp_path, entities=entities))
    assert problem.startswith(f"{tmp_path / 'entities.yaml'}:3:5: 'Xi' names both 'Xi Jinping' and 'Xi Xiaoxing'")


def test_missing_monitor_yaml(tmp_path):
    [problem] = problems(tmp_path)
    assert problem.startswith(f"{tmp_path / 'monitor.yaml'}:1:1: file not found")


def test_database_can_be_overridden_by_environment(tmp_path):
    config = load_config(write(tmp_path), environ={"NEWS_MONITOR_DATABASE": "/srv/state.db"})
    assert config.settings.database == Path("/srv/state.db")


@pytest.mark.parametrize(("text", "size"), [(1024, 1024), ("10MiB", 10 * 1024 * 1024), ("512KiB", 524288), ("1MB", 10**6)])
def test_sizes(text, size):
    assert parse_size(text) == size


def test_an_unknown_entity_type_is_refused_with_the_nearest_one(tmp_path):
    entities = "entities:\n  - {name: Vladimir Putin, type: PERSON}\n  - {name: Xi Jinping, type: PERSONN, aliases: [Xi]}\n"
    [problem] = problems(write(tmp_path, entities=entities))
    assert problem.startswith(f"{tmp_path / 'entities.yaml'}:3:")
    assert "entity 'Xi Jinping': unknown type 'PERSONN'; did you mean PERSON?" in problem
