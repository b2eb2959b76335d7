"""The daemon picks up config edits live (file change and SIGHUP) and keeps the
running config when an edit is broken."""

from __future__ import annotations

import json
import signal

from conftest import DEFAULT_ENTITIES, DaemonProcess, Story, rss, write_config

CEASEFIRE = Story("w-10", "Ceasefire agreed in Sudan", "Both sides agreed to a ceasefire on Friday.")
SUMMIT = Story("w-11", "Leaders meet at Geneva summit", "The summit opened on Saturday in Geneva.")
TARIFFS = Story("w-12", "New tariffs announced", "The ministry announced tariffs on steel imports.")


def rules_file(*rules: tuple[str, str]) -> str:
    return json.dumps({"rules": [{"name": name, "query": query, "notify": ["hook"]} for name, query in rules]})


def test_edits_apply_live_and_a_broken_edit_keeps_the_old_rules(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/wire.xml", rss(Story("w-1", "Quiet day", "Nothing happened.")), etag='"v1"')
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}],
        channels={"hook": {"url": webhook.json_url("/hook")}, "admin": {"url": webhook.json_url("/admin")}},
        admin_channel="admin",
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=wire .*backfill=true")

    # A valid edit, picked up from the file within seconds: a second rule.
    (config / "rules.yaml").write_text(rules_file(("ceasefire", "ceasefire"), ("summit", "summit")))
    daemon.wait_for_log(r"config\.reloaded .*2 rules", timeout=15)
    feed_server.route("/wire.xml", rss(SUMMIT, CEASEFIRE), etag='"v2"')
    requests = webhook.wait_for(2, timeout=30)
    assert sorted(r.json["title"].rsplit("[", 1)[1].rstrip("]") for r in requests) == ["ceasefire", "summit"]

    # A broken edit: reported with its position, the running rules stay in force.
    (config / "rules.yaml").write_text("rules:\n  - name: tariffs\n    query: tariffs AND\n    notify: [hook]\n")
    [invalid] = daemon.wait_for_log(r"config\.invalid", timeout=15)
    assert "rules.yaml:3:" in invalid and "tariffs" in invalid
    daemon.wait_for_log(r"config\.kept")
    # ... and the admin channel hears about it.
    webhook.wait_for(3, timeout=15)
    [admin] = [r for r in webhook.requests if r.path == "/admin"]
    assert admin.json["title"] == "news-monitor: config not reloaded"
    assert "rules.yaml:3:" in admin.json["message"]
    feed_server.route("/wire.xml", rss(TARIFFS, Story("w-13", "Another ceasefire", "A ceasefire in Yemen too."), SUMMIT, CEASEFIRE), etag='"v3"')
    webhook.wait_for(4, timeout=30)
    alerts = [r for r in webhook.requests if r.path == "/hook"]
    assert alerts[-1].json["title"].startswith("Another ceasefire")
    assert not any(r.json["title"].startswith("tariffs") for r in alerts)

    # SIGHUP reloads too: a fixed file, without waiting for the file watch.
    (config / "rules.yaml").write_text(rules_file(("tariffs", "tariffs")))
    daemon.process.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r"config\.reloaded .*1 rule\b", timeout=15)
    assert daemon.stop() == 0
