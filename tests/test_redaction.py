"""No secret is shown or logged: channel passwords and path tokens, webhook paths in
library debug logs, and credentials in feed URLs; each through the real CLI or daemon."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, DaemonProcess, rss, run_cli, write_config

# Low-entropy secrets on purpose: they look like words, not tokens.
SLACK_LOW = "slack://Tlow/Blow/lowsecret/#desk"
SLACK_SECRETS = ("Tlow/", "Blow", "lowsecret")


def _output(result) -> str:
    return result.stdout + result.stderr


def test_check_hides_a_channel_password_holding_hash_or_slash(tmp_path):
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}],
        channels={
            "mail": {"url": "mailtos://user:pa#ss/word@example.com"},
            "mail2": {"url": "mailtos://desk:hunter?22@smtp.example.org?to=desk@example.org"},
            "slack": {"url": "slack://Tlow/Bl#ow/lowsecret"},  # a "#" in a token makes it invalid
        },
    )
    checked = run_cli("check", config=config)
    assert checked.returncode == 1
    shown = _output(checked)
    for secret in ("pa#ss", "ss/word", "hunter", "Bl#ow", "lowsecret", "Tlow"):
        assert secret not in shown, shown
    assert "channel 'mail': invalid mailtos:// URL" in shown and "mailtos://user:***@example.com" in shown
    assert "mailtos://desk:***@smtp.example.org?to=desk@example.org" in shown
    assert "channel 'slack': invalid slack:// URL" in shown and "slack://***/***/***" in shown


def test_debug_logs_hide_the_slack_webhook_path(tmp_path, feed_server, webhook):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"slack": {"url": SLACK_LOW}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["slack"]}],
        entities=DEFAULT_ENTITIES,
    )
    polled = run_cli("poll", "--once", "--log-level", "DEBUG", config=config, webhook=webhook)
    assert polled.returncode == 0, polled.stderr
    [request] = webhook.wait_for(1)
    assert request.path == "/services/Tlow/Blow/lowsecret"  # the secret URL still works
    log = _output(polled)
    # urllib3 logs each request line at DEBUG; it stays (its text the quoted message field), with the path masked.
    assert '\\"POST /services/***/***/*** HTTP/1.1\\" 200' in log, log
    for secret in SLACK_SECRETS:
        assert secret not in log, log


def test_notify_test_masks_every_path_secret(tmp_path, webhook):
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": "http://127.0.0.1:9/wire.xml"}],
        channels={"hook": {"url": webhook.json_url("/hooks/abc123")}, "slack": {"url": SLACK_LOW}},
    )
    sent = run_cli("notify-test", "hook", config=config, webhook=webhook)
    assert sent.returncode == 0, sent.stderr
    assert f"sent a test message to 'hook' (json://127.0.0.1:{webhook.port}/***/***)" in sent.stderr
    assert "abc123" not in _output(sent) and "hooks" not in _output(sent)

    webhook.fail_next(1, status=500)
    failed = run_cli("notify-test", "hook", config=config, webhook=webhook)
    assert failed.returncode == 1
    assert f"channel 'hook' (json://127.0.0.1:{webhook.port}/***/***) failed:" in failed.stderr
    assert "abc123" not in _output(failed)

    slack = run_cli("notify-test", "slack", config=config, webhook=webhook)
    assert slack.returncode == 0, slack.stderr
    assert "sent a test message to 'slack' (slack://***/***/***/#desk)" in slack.stderr
    for secret in SLACK_SECRETS:
        assert secret not in _output(slack)
    assert [r.path for r in webhook.requests][-1] == "/services/Tlow/Blow/lowsecret"


FEED_SECRETS = ("s3cretpw", "tok12345", "key98765", "hunter22x", "zz9zz9")


def _feed_config(tmp_path: Path, feed_server) -> Path:
    port = feed_server.url("/").split(":")[2].split("/")[0]
    return write_config(
        tmp_path / "config",
        feeds=[
            {
                "name": "private",
                "url": f"http://alice:s3cretpw@127.0.0.1:{port}/feed.xml?token=tok12345&apikey=key98765&page=2",
            },
            {"name": "gone", "url": f"http://bob:hunter22x@127.0.0.1:{port}/missing.xml?access_token=zz9zz9"},
        ],
    )


def test_feed_credentials_are_used_but_never_shown(tmp_path, feed_server):
    feed_server.route("/feed.xml", rss(XI_PUTIN_CALL))
    config = _feed_config(tmp_path, feed_server)

    polled = run_cli("poll", "--once", config=config)
    assert polled.returncode == 0, polled.stderr
    # The stored URL still works: its credentials and token reach the server.
    [request] = feed_server.requests_for("/feed.xml")
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"alice:s3cretpw").decode()
    assert "token=tok12345&apikey=key98765" in request.path
    assert "1 ok, 1 failed" in polled.stderr

    listed = run_cli("feeds", "list", config=config)
    listed_json = run_cli("feeds", "list", "--json", config=config)
    status = run_cli("status", config=config)
    status_json = run_cli("status", "--json", config=config)
    for result in (polled, listed, listed_json, status, status_json):
        assert result.returncode == 0, result.stderr
        for secret in FEED_SECRETS:
            assert secret not in _output(result), _output(result)
    redacted = "http://alice:***@127.0.0.1:"
    assert redacted in listed.stdout and "/feed.xml?token=***&apikey=***&page=2" in listed.stdout
    assert {json.loads(line)["url"].split("@")[0] for line in listed_json.stdout.splitlines()} == {
        "http://alice:***",
        "http://bob:***",
    }
    assert redacted in status.stdout and "http://bob:***@127.0.0.1:" in status.stdout
    assert "missing.xml?access_token=***: HTTP 404" in status.stdout  # the last error, redacted too
    assert "poll.failed feed=gone" in polled.stderr and "access_token=***" in polled.stderr
    feeds = json.loads(status_json.stdout)["feeds"]
    assert all("***@" in feed["url"] for feed in feeds)


def test_feeds_add_hides_credentials_in_its_messages(tmp_path, feed_server):
    feed_server.route("/feed.xml", rss(XI_PUTIN_CALL))
    config = write_config(tmp_path / "config", feeds=[])
    port = feed_server.url("/").split(":")[2].split("/")[0]

    added = run_cli("feeds", "add", f"http://bob:hunter22x@127.0.0.1:{port}/feed.xml?apikey=key98765", config=config)
    assert added.returncode == 0, added.stderr
    assert f"http://bob:***@127.0.0.1:{port}/feed.xml?apikey=***" in added.stdout
    refused = run_cli(
        "feeds", "add", f"http://bob:hunter22x@127.0.0.1:{port}/missing.xml?token=tok12345", config=config
    )
    assert refused.returncode == 1
    assert f"http://bob:***@127.0.0.1:{port}/missing.xml?token=***" in refused.stderr, refused.stderr
    for result in (added, refused):
        for secret in FEED_SECRETS:
            assert secret not in _output(result), _output(result)


def test_the_daemon_log_hides_feed_credentials(tmp_path, feed_server, daemons):
    feed_server.route("/feed.xml", rss(XI_PUTIN_CALL))
    config = _feed_config(tmp_path, feed_server)
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    [failed] = daemon.wait_for_log(r"poll\.failed feed=gone")
    daemon.wait_for_log(r"poll\.done feed=private")
    assert "http://bob:***@127.0.0.1:" in failed and "access_token=***" in failed
    daemon.stop()
    log = daemon.log()
    for secret in FEED_SECRETS:
        assert secret not in log, log
