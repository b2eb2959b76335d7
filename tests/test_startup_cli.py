"""A run loads what it needs when it needs it: the spaCy model on the first items that need
entities, parser processes on the first feed body to parse. A `poll --once` where nothing is
new needs neither. Shown with a model that cannot be used (a pipeline without ner): only the
run that has items to analyse says so."""

from __future__ import annotations

import json

import spacy
from conftest import XI_PUTIN_CALL, DaemonProcess, rss, run_cli, write_config

NO_NER = "has no 'ner' component"


def unusable_model(tmp_path):
    path = tmp_path / "blank-pipeline"
    spacy.blank("en").to_disk(path)
    return path


def test_poll_once_loads_the_model_and_starts_parsers_only_when_needed(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(), etag='"v1"')
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"desk": {"url": "json://127.0.0.1:9/alerts"}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["desk"]}],
        nlp={"model": str(unusable_model(tmp_path))},
    )

    # An empty feed: parsed (a parser process starts), nothing to analyse (no model).
    empty = run_cli("poll", "--once", "--log-level", "DEBUG", config=config)
    assert empty.returncode == 0, empty.stderr
    assert "polled 1 feed: 1 ok, 0 failed" in empty.stderr
    assert "parser.starting" in empty.stderr and NO_NER not in empty.stderr

    # 304 Not Modified: nothing to parse, nothing to analyse.
    unchanged = run_cli("poll", "--once", "--log-level", "DEBUG", config=config)
    assert unchanged.returncode == 0, unchanged.stderr
    assert "poll.not_modified feed=wire" in unchanged.stderr and "polled 1 feed: 1 ok, 0 failed" in unchanged.stderr
    assert "parser.starting" not in unchanged.stderr and NO_NER not in unchanged.stderr

    # A new item needs entities: the model is loaded now, and its problem is the feed's error, in words.
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL), etag='"v2"')
    news = run_cli("poll", "--once", config=config)
    assert news.returncode == 0, news.stderr
    assert "polled 1 feed: 0 ok, 1 failed" in news.stderr
    assert f"  wire: spaCy model '{tmp_path / 'blank-pipeline'}' {NO_NER}" in news.stderr
    assert "Traceback" not in news.stderr and "internal error:" not in news.stderr


def test_the_daemon_loads_the_model_after_start_and_stops_with_one_line_when_it_cannot(tmp_path, feed_server, daemons):
    feed_server.route("/wire.xml", rss(), etag='"v1"')
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        nlp={"model": str(unusable_model(tmp_path))},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"nlp\.failed .*has no 'ner' component", timeout=90)
    assert daemon.process is not None
    assert daemon.process.wait(timeout=60) == 1
    log = daemon.log()
    assert "daemon.stopped" in log
    assert (
        log.rstrip().splitlines()[-1].startswith(f"news-monitor: spaCy model '{tmp_path / 'blank-pipeline'}' {NO_NER}")
    )
    assert "Traceback" not in log


def test_the_same_document_served_again_is_not_parsed_again(tmp_path, feed_server):
    # No validators: the server answers 200 with the whole document every time.
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}])
    first = run_cli("poll", "--once", "--log-level", "DEBUG", config=config)
    assert first.returncode == 0, first.stderr
    assert "poll.done feed=wire entries=1 fresh=1" in first.stderr and "parser.starting" in first.stderr

    again = run_cli("poll", "--once", "--log-level", "DEBUG", config=config)
    assert again.returncode == 0, again.stderr
    assert "poll.done feed=wire unchanged=true fresh=0" in again.stderr
    assert "polled 1 feed: 1 ok, 0 failed" in again.stderr and "parser.starting" not in again.stderr
    assert len(feed_server.requests_for("/wire.xml")) == 2

    # Any change to the document is parsed (and its new item stored).
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL, title="Example Wire, renamed"))
    changed = run_cli("poll", "--once", config=config)
    assert changed.returncode == 0, changed.stderr
    assert "poll.done feed=wire entries=1 fresh=0" in changed.stderr


def test_poll_once_checks_its_channels_while_fetching_and_sends_nothing_through_a_broken_one(tmp_path, feed_server):
    # The channels are built beside the fetches (apprise loads every plugin: a third of a
    # second), yet a broken channel still fails the run with its file:line:column, and what
    # the poll stored stays: its alert waits in the outbox for the fixed config.
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"desk": {"url": "nosuchscheme://host/path"}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["desk"]}],
    )
    broken = run_cli("poll", "--once", config=config)
    assert broken.returncode == 1
    assert "monitor.yaml:" in broken.stderr and "channel 'desk': apprise has no nosuchscheme:// channel" in broken.stderr
    assert "Traceback" not in broken.stderr

    listed = run_cli("alerts", "list", "--json", config=config)
    assert listed.returncode == 0, listed.stderr
    alerts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(alert["rule"], alert["status"], alert["attempts"]) for alert in alerts] == [("xi-putin", "pending", 0)]
