from __future__ import annotations

import json
import logging

from monitor.logs import JsonFormatter, KeyValueFormatter


def record(message: str, **extra) -> logging.LogRecord:
    made = logging.LogRecord("monitor.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_key_value_lines_quote_what_needs_quoting():
    line = KeyValueFormatter().format(record("poll.failed", feed="bbc-world", error='HTTP 503 "busy"', fresh=3, ok=True))
    assert line.split(" ", 2)[1:] == ["WARNING", 'poll.failed feed=bbc-world error="HTTP 503 \\"busy\\"" fresh=3 ok=true']


def test_json_lines_carry_the_same_fields():
    payload = json.loads(JsonFormatter().format(record("alert.sent", alerts=[1, 2], channel="desk")))
    assert payload["event"] == "alert.sent" and payload["level"] == "WARNING"
    assert payload["alerts"] == [1, 2] and payload["channel"] == "desk"


def test_the_cli_logs_json_when_asked(tmp_path, feed_server):
    from conftest import BACKFILL, rss, run_cli, write_config

    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}])
    result = run_cli("poll", "--once", "--log-format", "json", config=config)
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    done = next(e for e in events if e["event"] == "poll.done")
    assert done["feed"] == "wire" and done["entries"] == 2
