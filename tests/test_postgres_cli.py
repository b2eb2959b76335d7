"""news-monitor on PostgreSQL through the real CLI: `database: postgresql://...`, check, poll --once, search,
and `db copy` from a SQLite file."""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime

from conftest import BACKFILL, DEFAULT_ENTITIES, XI_PUTIN_CALL, Story, rss, run_cli, write_config

from monitor.store import AlertStatus, SqliteStorage
from monitor.store.postgres import PostgresStorage

RULE = {"name": "xi-putin", "query": "Xi AND Putin", "notify": ["mail"]}


def test_poll_once_check_status_and_search_on_postgresql(tmp_path, feed_server, smtp, pg_dsn):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        channels={"mail": {"url": smtp.apprise_url()}},
        rules=[RULE],
        entities=DEFAULT_ENTITIES,
        database=pg_dsn,
    )
    checked = run_cli("check", config=config)
    assert checked.returncode == 0, checked.stderr
    assert "reachable (PostgreSQL, schema" in checked.stdout and pg_dsn in checked.stdout

    first = run_cli("poll", "--once", config=config)
    assert first.returncode == 0, first.stderr
    assert smtp.messages == []  # a first fetch alerts nobody
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL))
    second = run_cli("poll", "--once", config=config)
    assert second.returncode == 0, second.stderr
    assert "delivered 1, failed 0" in second.stderr
    assert len(smtp.messages) == 1 and XI_PUTIN_CALL.title in smtp.messages[0].get_body(("plain",)).get_content()
    third = run_cli("poll", "--once", config=config)
    assert third.returncode == 0 and "delivered 0" in third.stderr and len(smtp.messages) == 1

    with PostgresStorage.open(pg_dsn) as store:  # it all went to the server, nothing to a file
        assert store.count("items") == len(BACKFILL) + 1
        assert store.alert_counts() == {AlertStatus.SENT: 1}
    assert not (config / "state" / "news-monitor.db").exists()

    status = run_cli("status", config=config)
    assert status.returncode == 0, status.stderr
    assert f"items stored:  {len(BACKFILL) + 1}" in status.stdout and "outbox: sent 1" in status.stdout
    found = run_cli("search", "title:putin", "--json", config=config)
    assert found.returncode == 0, found.stderr
    assert XI_PUTIN_CALL.title in found.stdout
    tested = run_cli("rules", "test", "xi-putin", "--json", config=config)
    assert tested.returncode == 0, tested.stderr
    assert {json.loads(line)["guid"] for line in tested.stdout.splitlines()} == {"wire-2", "wire-3"}
    listed = run_cli("alerts", "list", config=config)
    assert listed.returncode == 0 and XI_PUTIN_CALL.title in listed.stdout, listed.stderr


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://news:hunter22@127.0.0.1:{port}/news"
    config = write_config(tmp_path / "config", feeds=[], rules=[RULE], channels={"mail": {"url": "json://127.0.0.1:9"}},
                          database=url)  # fmt: skip
    for command in (("check",), ("poll", "--once"), ("status",)):
        result = run_cli(*command, config=config)
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("news-monitor: cannot connect to database"), result.stderr
        assert f"postgresql://news:***@127.0.0.1:{port}/news" in lines[0]
        assert "hunter22" not in result.stderr + result.stdout and "Traceback" not in result.stderr


def test_a_database_that_is_not_ours_or_another_url_is_refused(tmp_path, postgres, pg_empty):
    foreign = pg_empty()
    postgres.execute("CREATE TABLE invoices (id integer)", database=foreign.rsplit("/", 1)[1])
    config = write_config(tmp_path / "config", feeds=[], rules=[RULE], channels={"mail": {"url": "json://127.0.0.1:9"}},
                          database=foreign)  # fmt: skip
    refused = run_cli("check", config=config)
    assert refused.returncode == 1 and "is not a news-monitor database" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr

    other = write_config(tmp_path / "other", feeds=[], database="mysql://root:pw@127.0.0.1/news")
    wrong = run_cli("check", config=other)
    assert wrong.returncode == 1 and "expected a file path or a postgresql:// URL" in wrong.stderr, wrong.stderr
    assert ":pw@" not in wrong.stderr


SUMMIT = Story(
    "wire-9",
    "Putin to visit Beijing for a spring summit with Xi",
    "The Kremlin announced that Vladimir Putin will travel to Beijing in April, where Xi Jinping will host a summit.",
    datetime(2026, 11, 28, 7, 15, tzinfo=UTC),
)


def test_db_copy_moves_an_installation_and_it_goes_on_where_it_was(tmp_path, feed_server, smtp, pg_dsn):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    on_sqlite = dict(
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        channels={"mail": {"url": smtp.apprise_url()}},
        rules=[RULE],
        entities=DEFAULT_ENTITIES,
    )
    config = write_config(tmp_path / "config", **on_sqlite)
    assert run_cli("poll", "--once", config=config).returncode == 0
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, *BACKFILL))
    assert "delivered 1" in run_cli("poll", "--once", config=config).stderr
    sqlite_file = config / "state" / "news-monitor.db"
    with SqliteStorage.open(sqlite_file) as before:
        tables = {table: before.count(table) for table in ("feeds", "items", "entities", "matches", "alerts")}
        [sent] = before.list_alerts()
    assert tables["entities"] and tables["matches"]

    copied = run_cli("db", "copy", str(sqlite_file), pg_dsn, config=config)
    assert copied.returncode == 0, copied.stderr
    for table, rows in tables.items():
        assert re.search(rf"^  {table} +{rows}$", copied.stdout, re.MULTILINE), copied.stdout
    assert "counts checked" in copied.stdout
    again = run_cli("db", "copy", str(sqlite_file), pg_dsn, config=config)
    assert again.returncode == 1 and "already holds news-monitor data" in again.stderr, again.stderr

    # The same config on PostgreSQL: the feed's state, the history and the outbox came along.
    config = write_config(tmp_path / "config", database=pg_dsn, **on_sqlite)
    feed_server.route("/wire.xml", rss(SUMMIT, XI_PUTIN_CALL, *BACKFILL))
    moved = run_cli("poll", "--once", config=config)
    assert moved.returncode == 0, moved.stderr
    assert "delivered 1" in moved.stderr and len(smtp.messages) == 2  # the new story only: nothing sent twice
    assert SUMMIT.title in smtp.messages[1].get_body(("plain",)).get_content()
    with PostgresStorage.open(pg_dsn) as after:
        alerts = after.list_alerts()
        assert [a.id for a in alerts][-1] == sent.id and alerts[0].id > sent.id  # ids kept, new ones after
        assert after.alert(sent.id).sent_at == sent.sent_at
        assert after.count("items") == tables["items"] + 1
    found = run_cli("search", "phone call", config=config)
    assert found.returncode == 0 and "hold phone call" in found.stdout, found.stdout
