"""The outbox through the CLI: alerts list and retry, notify-test, dead letters,
channel templates of one's own."""

from __future__ import annotations

import json

from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, rss, run_cli, write_config


def failing_config(tmp_path, feed_server, webhook, **delivery):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    return write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook")}, "admin": {"url": webhook.json_url("/admin")}},
        admin_channel="admin",
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
        delivery=delivery,
    )


def test_a_dead_alert_is_kept_reported_and_can_be_retried(tmp_path, feed_server, webhook):
    webhook.set_default(status=500, body=b"down")
    config = failing_config(tmp_path, feed_server, webhook, retry_initial="1h", retry_max="1h", retry_window="1s")
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0 and "dead 1" in result.stderr
    admin = [r for r in webhook.requests if r.path == "/admin"]
    assert len(admin) == 1
    assert "given up" in admin[0].json["title"] and "news-monitor alerts retry 1" in admin[0].json["message"]

    listed = run_cli("alerts", "list", "--status", "dead", config=config)
    assert listed.returncode == 0
    assert "#1  dead  rule=xi-putin channel=hook attempts=1" in listed.stdout
    assert "last error:" in listed.stdout and "500" in listed.stdout
    assert run_cli("alerts", "list", "--status", "sent", config=config).stdout.strip() == "0 alerts"

    webhook.set_default(status=200)
    retried = run_cli("alerts", "retry", "--dead", config=config)
    assert retried.returncode == 0 and "1 alert due again" in retried.stdout
    assert run_cli("poll", "--once", config=config).returncode == 0
    [row] = [json.loads(line) for line in run_cli("alerts", "list", "--json", config=config).stdout.splitlines()]
    assert (row["status"], row["attempts"], row["title"]) == ("sent", 2, XI_PUTIN_CALL.title)
    assert len([r for r in webhook.requests if r.path == "/hook" and r.status == 200]) == 1


def test_alerts_retry_needs_something_to_retry(tmp_path, feed_server, webhook):
    config = failing_config(tmp_path, feed_server, webhook)
    run_cli("poll", "--once", config=config)
    result = run_cli("alerts", "retry", config=config)
    assert result.returncode == 2 and "name alert IDs or use --dead" in result.stderr


def test_notify_test_reports_success_and_the_reason_of_a_failure(tmp_path, webhook):
    config = write_config(
        tmp_path / "config",
        feeds=[],
        channels={
            "hook": {"url": webhook.json_url("/hook")},
            "secret": {"url": f"json://user:hunter2secret@127.0.0.1:{webhook.port}/private"},
        },
    )
    ok = run_cli("notify-test", "hook", config=config)
    assert ok.returncode == 0, ok.stderr
    [request] = webhook.requests
    assert "Test alert from news-monitor for channel hook" in request.json["title"]

    webhook.set_default(status=503, body=b"maintenance")
    failed = run_cli("notify-test", "secret", config=config)
    assert failed.returncode == 1
    assert "channel 'secret'" in failed.stderr and "503" in failed.stderr
    assert "hunter2secret" not in failed.stderr + failed.stdout

    unknown = run_cli("notify-test", "pager", config=config)
    assert unknown.returncode == 2 and "no channel named 'pager'" in unknown.stderr


def test_a_channel_template_of_ones_own_is_used_and_checked(tmp_path, feed_server, webhook):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL))
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True}],
        channels={"hook": {"url": webhook.json_url("/hook"), "template": "templates/pager.txt.j2"}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
    )
    (config / "templates").mkdir()
    template = config / "templates" / "pager.txt.j2"
    template.write_text("PAGER {{ rule|upper }} | {{ title }} | {{ link }}\n")
    assert run_cli("check", config=config).returncode == 0
    assert run_cli("poll", "--once", config=config).returncode == 0
    [request] = webhook.requests
    assert request.json["message"].strip() == f"PAGER XI-PUTIN | {XI_PUTIN_CALL.title} | {XI_PUTIN_CALL.link}"

    template.write_text("PAGER {{ rule }} {{ no_such_field }}\n")
    undefined = run_cli("check", config=config)
    assert undefined.returncode == 1
    assert "monitor.yaml:" in undefined.stderr and "no_such_field" in undefined.stderr
    template.write_text("PAGER {% if rule %}\n")
    broken = run_cli("check", config=config)
    assert broken.returncode == 1 and "pager.txt.j2:1: template syntax error" in broken.stderr


def test_poll_once_delivers_every_alert_it_found_however_many(tmp_path, feed_server, webhook):
    from conftest import Story

    config = failing_config(tmp_path, feed_server, webhook)
    many = [Story(f"burst-{n}", f"Xi and Putin update {n}", f"Update number {n} on the talks.") for n in range(260)]
    feed_server.route("/wire.xml", rss(*many))
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert "260 alerts queued; delivered 260, failed 0, dead 0" in result.stderr
    assert "left in the outbox" not in result.stderr
    assert len([r for r in webhook.requests if r.path == "/hook"]) == 260


def test_poll_once_says_what_it_left_in_the_outbox_and_why(tmp_path, feed_server, webhook):
    webhook.set_default(status=503, body=b"maintenance")
    config = failing_config(tmp_path, feed_server, webhook, retry_initial="10m", retry_max="1h")
    result = run_cli("poll", "--once", config=config)
    assert result.returncode == 0, result.stderr
    assert "left in the outbox: 1 alert" in result.stderr
    [line] = [line for line in result.stderr.splitlines() if "pending, next try" in line]
    assert "on 'hook'" in line and "503" in line


def test_config_may_come_before_the_command_and_unknown_alerts_are_named(tmp_path, feed_server, webhook):
    import subprocess
    import sys

    from conftest import cli_env

    config = failing_config(tmp_path, feed_server, webhook)
    assert run_cli("poll", "--once", config=config).returncode == 0
    before = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config), "alerts", "list"],
        capture_output=True, text=True, timeout=120, env=cli_env(), cwd=tmp_path,
    )  # fmt: skip
    assert before.returncode == 0, before.stderr
    assert before.stdout.splitlines()[-1] == "1 alert"
    missing = run_cli("alerts", "retry", "1", "9999", config=config)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "news-monitor: no alert with id 9999"
