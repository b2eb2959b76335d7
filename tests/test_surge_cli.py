"""Surge rules through the real CLI: config errors, `rules test` on history, and one alert end to end."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import SLACK_URL, Story, rss, run_cli, write_config
from test_surge_store import HOUR, T0, Desk, text


def rules_file(tmp_path: Path, rules: str) -> Path:
    config = write_config(tmp_path / "config", feeds=[], channels={"newsroom": {"url": "json://127.0.0.1:9/x"}})
    (config / "rules.yaml").write_text(rules)
    return config


def test_check_names_each_problem_of_a_spike_rule_where_it_is(tmp_path: Path) -> None:
    config = rules_file(
        tmp_path,
        "rules:\n"
        "  - name: both\n    query: Putin\n    spike: Putin\n    notify: [newsroom]\n"
        "  - name: neither\n    notify: [newsroom]\n"
        "  - name: q-window\n    query: Putin\n    window: 2h\n    notify: [newsroom]\n"
        "  - name: inverted\n    spike: Xi\n    window: 8d\n    notify: [newsroom]\n",
    )
    result = run_cli("check", config=config)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    rules = config / "rules.yaml"
    assert lines == [
        f"{rules}:4:12: rule 'both': has both query: and spike:; a rule alerts on each matching story (query:) "
        "or on a surge of them (spike:), so make it two rules",
        f"{rules}:6:5: rule 'neither': needs a query: (an alert on each matching story) or a spike: (an alert "
        "when its stories surge)",
        f"{rules}:10:5: rule 'q-window': window: belongs to a spike: rule (a surge alert); this rule has a query:",
        f"{rules}:14:13: rule 'inverted': window (8 d) must be shorter than baseline (7 d): the usual rate is "
        "measured over the baseline, in windows",
    ]


def test_check_reports_bad_numbers_and_a_spike_syntax_error_with_its_column(tmp_path: Path) -> None:
    config = rules_file(
        tmp_path, "rules:\n  - name: s\n    spike: Putin AND\n    factor: 0.5\n    notify: [newsroom]\n"
    )
    result = run_cli("check", config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{config / 'rules.yaml'}:4:13: rule 's': factor: must be at least 1.0, got 0.5"
    (config / "rules.yaml").write_text("rules:\n  - name: s\n    spike: Putin AND\n    notify: [newsroom]\n")
    result = run_cli("check", config=config)
    assert result.returncode == 1
    assert result.stderr.strip() == f"{config / 'rules.yaml'}:3:21: rule 's': expected a term after AND"
    (config / "rules.yaml").write_text("rules:\n  - name: s\n    spike: Putin\n    notify: [newsroom]\n")
    ok = run_cli("check", config=config)
    assert ok.returncode == 0, ok.stderr
    assert "1 rule" in ok.stdout


def test_rules_test_shows_when_a_spike_rule_would_have_fired(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    try:
        desk.quiet_week(T0)
        desk.burst(T0, 6)
        desk.store_items(T0 + 3 * HOUR, "Putin again, once")
        desk.burst(T0 + 4 * HOUR, 5)
    finally:
        desk.store.close()
    result = run_cli("rules", "test", "putin-surge", "--since", "3650d", config=desk.config)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("putin-surge: spike Putin\n")
    assert "newest 2 of 2 surges, up to 3650d back:" in out
    assert f"{T0 + 4 * HOUR + 24 * timedelta(minutes=1):%Y-%m-%d %H:%M}  5 stories in the last 1 h; usual" in out
    assert f"{T0 + 24 * timedelta(minutes=1):%Y-%m-%d %H:%M}  5 stories in the last 1 h; usual 0.12 per 1 h" in out
    assert "[feed" in out and "Putin news" in out and "https://feed" in out
    assert out.rstrip().endswith("2 surges in 3650d: 36 matching items in 36 stories; history starts 2026-11-12 12:00")
    lines = [
        json.loads(line)
        for line in run_cli(
            "rules", "test", "putin-surge", "--since", "3650d", "--json", config=desk.config
        ).stdout.splitlines()
    ]
    assert [line["count"] for line in lines] == [5, 5]
    assert lines[0]["stories"][0]["title"].startswith("Putin news")


def test_a_surge_reaches_slack_once_through_poll_once(tmp_path: Path, feed_server, webhook) -> None:
    now = datetime.now(UTC)
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"slack": {"url": SLACK_URL}},
        rules=[{"name": "putin-surge", "spike": "Putin", "notify": ["slack"]}],
    )
    desk = Desk(tmp_path, config=config)
    try:  # a quiet week of history: a Putin story every 8 hours
        moment = now - timedelta(days=8)
        while moment < now - HOUR:
            desk.store_items(moment, f"Putin visits town {desk.n}", feed="wire")
            moment += 8 * HOUR
    finally:
        desk.store.close()
    burst = [Story(f"b{i}", f"Putin surge story {i}", text(7000 + i), now - timedelta(minutes=i)) for i in range(6)]
    feed_server.route("/wire.xml", rss(*burst))
    first = run_cli("poll", "--once", config=config, webhook=webhook)
    assert first.returncode == 0, first.stderr
    assert "surge.fired" in first.stderr
    [request] = webhook.requests
    body = json.dumps(request.json)
    assert "Surge: Putin" in body and "6 stories in the last 1 h" in body
    assert "Putin surge story" in body and "news.example.org/b" in body
    more = [Story(f"c{i}", f"Putin surge goes on {i}", text(8000 + i), now) for i in range(3)]
    feed_server.route("/wire.xml", rss(*more, *burst))
    second = run_cli("poll", "--once", config=config, webhook=webhook)
    assert second.returncode == 0, second.stderr
    assert "fresh=3" in second.stderr and "surge.fired" not in second.stderr
    assert len(webhook.requests) == 1


def test_alerts_list_shows_what_surged_not_one_of_its_items(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    try:
        desk.quiet_week(T0)
        desk.burst(T0, 6)
    finally:
        desk.store.close()
    listed = run_cli("alerts", "list", "--rule", "putin-surge", config=desk.config)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert "rule=putin-surge channel=console" in lines[0]
    assert lines[1] == "    Surge: Putin — 5 stories in the last 1 h; usual 0.12 per 1 h over 7 d — 41x"
    assert "Putin news" not in listed.stdout
    as_json = run_cli("alerts", "list", "--json", config=desk.config)
    [row] = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert row["kind"] == "surge" and row["title"] == "Surge: Putin"
    assert row["summary"].startswith("5 stories in the last 1 h; usual 0.12 per 1 h")
    assert row["link"].startswith("https://feed")  # the top story's
