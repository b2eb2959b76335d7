"""Matches in a feed's first fetch alert nobody (old news); the CLI says so and lists them."""

from __future__ import annotations

import json

from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, Story, rss, run_cli, write_config

OLDER = Story("old-2", "Xi and Putin to meet again next spring", "Xi Jinping and Vladimir Putin agreed to meet.")
NEWS = Story("new-1", "Xi and Putin sign a grain deal", "Xi Jinping and Vladimir Putin signed a deal on grain.")


def test_matches_held_back_in_a_first_fetch_are_counted_by_poll_and_status_and_listed(tmp_path, feed_server, webhook):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, OLDER))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
    )

    first = run_cli("poll", "--once", config=config)
    assert first.returncode == 0, first.stderr
    assert "0 alerts queued" in first.stderr
    assert (
        "2 matches in first fetches were not alerted (old news); see `news-monitor alerts list --backfill`"
        in first.stderr
    )
    assert webhook.requests == []

    status = run_cli("status", config=config)
    assert status.returncode == 0, status.stderr
    assert "first fetches: 2 matches not alerted (old news); see `news-monitor alerts list --backfill`" in status.stdout
    assert json.loads(run_cli("status", "--json", config=config).stdout)["backfill_matches"] == 2

    listed = run_cli("alerts", "list", "--backfill", config=config)
    assert listed.returncode == 0, listed.stderr
    assert f"[wire] {XI_PUTIN_CALL.title}" in listed.stdout and f"[wire] {OLDER.title}" in listed.stdout
    assert listed.stdout.count("rule=xi-putin") == 2 and "first seen " in listed.stdout
    assert listed.stdout.rstrip().endswith("2 matches in first fetches, not alerted")
    rows = [
        json.loads(line)
        for line in run_cli("alerts", "list", "--backfill", "--json", config=config).stdout.splitlines()
    ]
    assert {(row["rule"], row["feed"], row["title"]) for row in rows} == {
        ("xi-putin", "wire", XI_PUTIN_CALL.title),
        ("xi-putin", "wire", OLDER.title),
    }
    # The ordinary outbox listing is unchanged: nothing was alerted.
    assert run_cli("alerts", "list", config=config).stdout.strip() == "0 alerts"

    # News after the first fetch alerts as usual; a poll with no first fetch says nothing of backfill.
    feed_server.route("/wire.xml", rss(NEWS, XI_PUTIN_CALL, OLDER))
    second = run_cli("poll", "--once", config=config)
    assert second.returncode == 0, second.stderr
    assert "1 alert queued" in second.stderr and "first fetch" not in second.stderr
    assert len(run_cli("alerts", "list", "--backfill", "--json", config=config).stdout.splitlines()) == 2
