"""/healthz and /metrics of the running daemon, scraped for real."""

from __future__ import annotations

import re

import httpx
from conftest import DEFAULT_ENTITIES, XI_PUTIN_CALL, DaemonProcess, rss, write_config
from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_the_daemon_serves_health_and_metrics(tmp_path, feed_server, webhook, daemons):
    feed_server.route("/wire.xml", rss(XI_PUTIN_CALL), etag='"v1"')
    feed_server.route("/gone.xml", b"gone", status=404)
    config = write_config(
        tmp_path / "config",
        feeds=[
            {"name": "wire", "url": feed_server.url("/wire.xml"), "alert_first_fetch": True},
            {"name": "gone", "url": feed_server.url("/gone.xml")},
        ],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["hook"]}],
        entities=DEFAULT_ENTITIES,
        health={"enabled": True, "port": 0},
    )
    daemon = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(daemon)
    [listening] = daemon.wait_for_log(r"health\.listening")
    base = re.search(r"url=(http://\S+)", listening).group(1)
    webhook.wait_for(1, timeout=60)
    daemon.wait_for_log(r"alert\.sent")
    daemon.wait_for_log(r"poll\.not_modified feed=wire")

    health = httpx.get(base + "healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"

    metrics = samples(httpx.get(base + "metrics", timeout=10).text)
    assert metrics[("news_monitor_polls_total", (("feed", "wire"), ("outcome", "ok")))] == 1
    assert metrics[("news_monitor_polls_total", (("feed", "wire"), ("outcome", "not_modified")))] >= 1
    assert metrics[("news_monitor_poll_errors_total", (("feed", "gone"), ("stage", "retrieve")))] >= 1
    assert metrics[("news_monitor_matches_total", (("rule", "xi-putin"),))] == 1
    assert metrics[("news_monitor_alerts", (("status", "sent"),))] == 1
    assert metrics[("news_monitor_delivery_latency_seconds_count", (("channel", "hook"),))] == 1
    assert metrics[("news_monitor_database_writable", ())] == 1

    assert httpx.get(base + "nothing", timeout=10).status_code == 404
    assert daemon.stop() == 0


def test_a_non_loopback_health_host_needs_to_be_allowed(tmp_path):
    from conftest import run_cli

    config = write_config(tmp_path / "config", feeds=[], health={"enabled": True, "host": "0.0.0.0"})
    result = run_cli("check", config=config)
    assert result.returncode == 1 and "not a loopback address" in result.stderr
