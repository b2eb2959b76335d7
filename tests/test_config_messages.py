"""`news-monitor check` speaks the product's words: what was expected, which rule, feed or channel,
the nearest key for a typo, a YAML syntax error where it starts, and a warning when no rule exists."""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import pytest
from conftest import DaemonProcess, run_cli, write_config

RULES = """\
rules:
  - name: a
    query: Xi
    notify: [console]
  - name: b
    query: Putin
    notify: [console]
"""


def config_with(tmp_path: Path, *, rules: str | None = None, monitor: str | None = None) -> Path:
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}])
    (config / "rules.yaml").write_text(textwrap.dedent(rules) if rules is not None else RULES)
    if monitor is not None:
        (config / "monitor.yaml").write_text(textwrap.dedent(monitor).replace("DB", str(config / "db.sqlite")))
    return config


def check(config: Path) -> tuple[int, list[str]]:
    """check's exit code and its lines on stderr, paths relative to the config directory's parent."""
    result = run_cli("check", config=config)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr.replace(f"{config.parent}/", "").splitlines()


# Before: config/rules.yaml:1:1: Input should be a valid dictionary or instance of RulesFile
def test_rules_written_as_a_bare_list(tmp_path):
    config = config_with(tmp_path, rules="- name: xi-putin\n  query: Xi AND Putin\n  notify: [console]\n")
    assert check(config) == (1, ["config/rules.yaml:1:1: expected a mapping with a `rules:` list, got a list"])


# Before: config/rules.yaml:10:13: rules.2.notify: Tuple should have at least 1 item after validation, not 0
def test_an_empty_notify_names_the_rule(tmp_path):
    config = config_with(tmp_path, rules=RULES + "  - name: xi-putin\n    query: Xi AND Putin\n    notify: []\n")
    assert check(config) == (1, ["config/rules.yaml:10:13: rule 'xi-putin': notify: name at least one channel"])


# Before: rules.0: missing required key 'notify' + rules.0.notfy: unknown key 'notfy'
def test_a_mistyped_key_suggests_the_nearest(tmp_path):
    config = config_with(tmp_path, rules="rules:\n  - name: xi-putin\n    query: Xi\n    notfy: [console]\n")
    assert check(config) == (1, ["config/rules.yaml:4:5: rule 'xi-putin': unknown key 'notfy'; did you mean 'notify'?"])


# Before: rules.0.zzz: unknown key 'zzz'
def test_an_unknown_key_with_nothing_near_lists_the_keys(tmp_path):
    config = config_with(tmp_path, rules="rules:\n  - name: r\n    query: Xi\n    notify: [console]\n    zzz: 1\n")
    assert check(config) == (
        1,
        [
            "config/rules.yaml:5:5: rule 'r': unknown key 'zzz'; the keys here are name, query, spike, window, "
            "baseline, factor, min_count, notify, mode, schedule, timezone, cooldown, max_per_hour, quiet_hours"
        ],
    )


# Before: rules.0.cooldown: invalid duration 'soon'; expected a number and a unit: 30s, 10m, 6h, 1d
#         rules.0.max_per_hour: Input should be a valid integer, unable to parse string as an integer
#         rules.0.mode: Input should be 'instant' or 'digest'
def test_wrong_values_say_what_was_expected(tmp_path):
    rules = "rules:\n  - name: r\n    query: Xi\n    notify: [console]\n    mode: digets\n    cooldown: soon\n    max_per_hour: ten\n"
    code, lines = check(config_with(tmp_path, rules=rules))
    assert code == 1
    assert lines == [
        "config/rules.yaml:5:11: rule 'r': mode: expected 'instant' or 'digest', got 'digets'; did you mean 'digest'?",
        "config/rules.yaml:6:15: rule 'r': cooldown: expected a duration like 30s, 10m, 6h or 1d, got 'soon'",
        "config/rules.yaml:7:19: rule 'r': max_per_hour: expected a number, got 'ten'",
    ]


# Before: rules.0: Input should be a valid dictionary or instance of RuleConfig
#         rules.1.query: Input should be a valid string / rules.1.notify: Input should be a valid tuple
def test_rules_without_a_name_are_numbered_from_one(tmp_path):
    rules = "rules:\n  - just a string\n  - name: b\n    query: 3\n    notify: console\n"
    code, lines = check(config_with(tmp_path, rules=rules))
    assert code == 1
    assert lines == [
        "config/rules.yaml:2:5: rule 1: expected a mapping with the keys name, query, spike, window, baseline, "
        "factor, min_count, notify, mode, schedule, timezone, cooldown, max_per_hour, quiet_hours, got 'just a string'",
        "config/rules.yaml:4:12: rule 'b': query: expected text, got 3 (put it in quotes)",
        "config/rules.yaml:5:13: rule 'b': notify: expected a list of channels like [console], got 'console'",
    ]


# Before: poll.concurrency: Input should be a valid integer, unable to parse string as an integer
#         poll.allow_private: Input should be a valid boolean, unable to interpret input
#         channels.desk.fromat: unknown key 'fromat' / feeds.1.tagz: unknown key 'tagz'
#         feeds.2: missing required key 'name' / stories.threshold: Input should be less than or equal to 1
def test_settings_feeds_and_channels_are_named(tmp_path):
    monitor = """\
        database: DB
        poll: {concurrency: ten, allow_private: maybe, max_bytes: lots}
        stories: {threshold: 2}
        channels:
          desk: {url: 'json://127.0.0.1:9/hook', fromat: text}
        feeds:
          - {name: wire, url: 'http://127.0.0.1:9/a.xml'}
          - {name: agency, url: 'http://127.0.0.1:9/b.xml', tagz: [x], interval: 5 minutes}
          - {url: 'http://127.0.0.1:9/c.xml'}
        """
    code, lines = check(config_with(tmp_path, monitor=monitor))
    assert code == 1
    assert lines == [
        "config/monitor.yaml:2:21: poll.concurrency: expected a number, got 'ten'",
        "config/monitor.yaml:2:41: poll.allow_private: expected true or false, got 'maybe'",
        "config/monitor.yaml:2:59: poll.max_bytes: expected a size like 10MiB or 512KiB, got 'lots'",
        "config/monitor.yaml:3:22: stories.threshold: must be at most 1.0, got 2",
        "config/monitor.yaml:5:42: channel 'desk': unknown key 'fromat'; did you mean 'format'?",
        "config/monitor.yaml:8:53: feed 'agency': unknown key 'tagz'; did you mean 'tags'?",
        "config/monitor.yaml:8:74: feed 'agency': interval: expected a duration like 30s, 10m, 6h or 1d, got '5 minutes'",
        "config/monitor.yaml:9:5: feed 3: missing required key 'name'",
    ]  # in the order of the file


# Before: config/rules.yaml:17:1: invalid YAML: found unexpected end of stream
def test_an_unclosed_quote_is_reported_where_it_opens(tmp_path):
    rules = RULES + "".join(f"  - name: r{n}\n    query: Xi\n    notify: [console]\n" for n in range(2))
    rules += '  - name: "xi-putin\n    query: Xi AND Putin\n'  # line 14: the quote is never closed
    config = config_with(tmp_path, rules=rules)
    assert len(rules.splitlines()) == 15
    assert check(config) == (1, ["config/rules.yaml:14:11: a quoted value starts here and is never closed"])


# Before: config/rules.yaml:5:13: invalid YAML: expected <block end>, but found '<scalar>'
def test_a_quote_closed_by_the_next_one_is_reported_where_it_opens(tmp_path):
    rules = 'rules:\n  - name: "xi-putin\n    query: Xi\n  - name: b\n    query: "Putin"\n'
    assert check(config_with(tmp_path, rules=rules)) == (
        1,
        [
            "config/rules.yaml:2:11: a quoted value starts here and runs to line 5, column 13; is its closing quote missing?"
        ],
    )


# Before: config/monitor.yaml:4:1: invalid YAML: expected ',' or '}', but got '<scalar>'
def test_an_unclosed_flow_mapping_is_reported_where_it_opens(tmp_path):
    monitor = "database: DB\nchannels:\n  desk: {url: 'json://127.0.0.1:9/hook'\nfeeds: []\n"
    assert check(config_with(tmp_path, monitor=monitor)) == (
        1,
        ["config/monitor.yaml:3:9: a mapping in { } starts here and is not closed before line 4, column 1"],
    )


# Before: config/rules.yaml:3:11: invalid YAML: mapping values are not allowed here
def test_a_colon_inside_a_plain_value(tmp_path):
    rules = "rules:\n  - name: r\n    query: Xi: Putin\n    notify: [console]\n"
    assert check(config_with(tmp_path, rules=rules)) == (
        1,
        [
            "config/rules.yaml:3:14: unexpected ':' here: put a value that holds ': ' in quotes, "
            "or check this line's indentation"
        ],
    )


# Before: exit 0, "OK: 1 feeds, 0 rules, ..." and nothing else.
@pytest.mark.parametrize("rules", [None, "", "rules: []\n"], ids=["missing", "empty", "empty-list"])
def test_no_rules_is_a_warning(tmp_path, rules):
    config = config_with(tmp_path, rules=rules or "")
    if rules is None:
        (config / "rules.yaml").unlink()
    result = run_cli("check", config=config)
    assert result.returncode == 0, result.stderr
    assert "OK: 1 feed, 0 rules" in result.stdout
    missing = "file not found, so " if rules is None else ""
    assert result.stderr.splitlines() == [
        f"{config / 'rules.yaml'}: warning: {missing}no rules: nothing will ever alert; see README 'Watch rules'"
    ]


def test_a_config_with_rules_has_no_warning(tmp_path):
    result = run_cli("check", config=config_with(tmp_path))
    assert result.returncode == 0 and result.stderr == ""


# Before: the daemon started and reloaded without a word about having no rules.
def test_the_daemon_warns_of_no_rules_at_start_and_reload(tmp_path, daemons):
    config = config_with(tmp_path, rules="rules: []\n")
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    [started] = daemon.wait_for_log(r"config\.no_rules", timeout=90)
    assert "rules.yaml: warning: no rules: nothing will ever alert" in started

    (config / "rules.yaml").write_text(RULES)
    daemon.wait_for_log(r"config\.reloaded .*2 rules", timeout=30)
    (config / "rules.yaml").write_text("")
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r"config\.reloaded .*0 rules", timeout=30)
    assert len(daemon.wait_for_log(r"config\.no_rules", count=2, timeout=30)) == 2
    assert daemon.stop() == 0
