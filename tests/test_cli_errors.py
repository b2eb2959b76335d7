"""Every command meets a database it cannot use with one line on stderr and exit 1, never a traceback."""

from __future__ import annotations

import pytest
from conftest import run_cli, write_config

COMMANDS = [
    ("check",),
    ("status",),
    ("status", "--json"),
    ("search", "putin"),
    ("alerts", "list"),
    ("alerts", "retry", "1"),
    ("rules", "test", "xi-putin"),
    ("rules", "lint"),
    ("explain", "1", "xi-putin"),
    ("feeds", "list"),
    ("feeds", "export"),
    ("feeds", "remove", "extra"),
    ("feeds", "import", "{opml}"),
    ("poll", "--once"),
    ("run",),
]


@pytest.fixture(params=["not-sqlite", "directory"])
def broken(request, tmp_path):
    if request.param == "not-sqlite":
        database = tmp_path / "garbage.db"
        database.write_bytes(b"this is not an SQLite database " * 64)
        expected = "file is not a database"
    else:
        database = tmp_path / "a-directory"
        database.mkdir()
        expected = "is a directory"
    opml = tmp_path / "feeds.opml"
    opml.write_text('<opml version="2.0"><body><outline xmlUrl="http://127.0.0.1:9/x.xml" text="x"/></body></opml>')
    config = write_config(
        tmp_path / "config",
        feeds=[],
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}],
        database=str(database),
    )
    return config, opml, database, expected


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_database_it_cannot_use_is_one_line_and_exit_1(broken, command):
    config, opml, database, expected = broken
    result = run_cli(*(part.format(opml=opml) for part in command), config=config)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith("news-monitor: ") and str(database) in line and expected in line
