"""A database file that exists but lost its schema (emptied to 0 bytes, say) is never taken
for a new one: every command refuses it in one line, and the file is left as it was."""

from __future__ import annotations

import pytest
from conftest import DaemonProcess, run_cli, write_config


@pytest.mark.parametrize(
    "command",
    [("run",), ("poll", "--once"), ("status",), ("check",), ("alerts", "list"), ("feeds", "list")],
    ids=lambda command: " ".join(command),
)
def test_an_emptied_database_is_refused_with_a_clear_message(tmp_path, feed_server, command):
    feed_server.route("/wire.xml", b"")
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}])
    database = config / "state" / "news-monitor.db"
    database.parent.mkdir(parents=True)
    database.write_bytes(b"")

    result = run_cli(*command, config=config, timeout=60)
    assert result.returncode == 1
    # (check also warns that this config has no rules; that line is not about the database)
    [line] = [line for line in result.stderr.splitlines() if "warning: no rules" not in line]
    assert str(database) in line
    assert "exists but is empty" in line
    assert "restore it from a backup" in line and "delete the file" in line
    assert "Traceback" not in result.stderr
    assert database.read_bytes() == b""  # untouched: no schema written into it
    assert feed_server.requests_for("/wire.xml") == []  # nothing polled, so nothing alerted


def test_a_new_database_is_still_created_and_a_restart_keeps_it(tmp_path, feed_server, daemons):
    feed_server.route("/wire.xml", b"")
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}])
    database = config / "state" / "news-monitor.db"
    assert not database.exists()
    first = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(first)
    first.wait_for_log(r"daemon\.started")
    assert first.stop() == 0
    assert database.stat().st_size > 0
    result = run_cli("check", config=config)
    assert result.returncode == 0 and "schema" in result.stdout, result.stderr
