"""Instances of one database: on SQLite one daemon only (a second refuses to start, in one line); on
PostgreSQL several, each registered with a heartbeat, listed by `news-monitor status`, gone when it stops."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DaemonProcess, Story, rss, run_cli, wait_until, write_config

QUIET = Story("w-1", "Quiet day", "Nothing happened.", datetime(2026, 1, 5, 8, 0, tzinfo=UTC))


def wire_config(tmp_path: Path, feed_server, **settings: object) -> Path:
    feed_server.route("/wire.xml", rss(QUIET))
    return write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "interval": "1h"}],
        poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "2h"},
        **settings,
    )


def test_a_second_daemon_on_one_sqlite_file_refuses_to_start_in_one_line(tmp_path, feed_server, daemons):
    config = wire_config(tmp_path, feed_server)
    first = DaemonProcess(config, tmp_path / "first.log").start()
    daemons.append(first)
    first.wait_for_log(r"daemon\.started")

    second = DaemonProcess(config, tmp_path / "second.log").start()
    daemons.append(second)
    assert second.process is not None and first.process is not None
    assert second.process.wait(timeout=120) == 1
    lines = [line for line in second.log().splitlines() if line.strip()]
    assert lines[-1] == (
        f"news-monitor: another daemon (pid {first.process.pid}) already runs on database "
        f"{config / 'state' / 'news-monitor.db'}; stop it first "
        "(one daemon per SQLite file: run several instances on PostgreSQL)"
    ), second.log()
    assert "Traceback" not in second.log()
    assert first.process.poll() is None  # the first one runs on, untouched

    # Once the first is gone (even killed), a daemon starts again on the same file.
    first.kill()
    again = DaemonProcess(config, tmp_path / "again.log").start()
    daemons.append(again)
    again.wait_for_log(r"daemon\.started")
    # A one-shot command beside a running daemon is still allowed; status names the daemon running.
    assert again.process is not None
    lines = instance_lines(config)
    assert len(lines) == 1 and f"pid {again.process.pid} " in lines[0], lines
    assert again.stop() == 0
    assert "instances running: none" in run_cli("status", config=config).stdout


def instance_lines(config: Path) -> list[str]:
    result = run_cli("status", config=config)
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines() if line.startswith("    ") and " pid " in line]


def test_instances_on_postgresql_share_the_feeds_by_lease_and_hand_over_the_singletons(
    tmp_path, feed_server, daemons, pg_dsn
):
    gate = threading.Event()  # holds every feed's answer: the polls stay in flight, their leases held
    names = [f"wire-{n}" for n in range(6)]
    for name in names:
        feed_server.route(f"/{name}.xml", rss(QUIET), gate=gate)
    config = write_config(
        tmp_path / "config",
        feeds=[{"name": name, "url": feed_server.url(f"/{name}.xml"), "interval": "1h"} for name in names],
        poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "2h", "timeout": "60s", "per_host": 8},
        database=pg_dsn,
    )
    first = DaemonProcess(config, tmp_path / "first.log").start()
    daemons.append(first)
    wait_until(lambda: len(feed_server.requests) == len(names), "the first instance to poll every feed")
    second = DaemonProcess(config, tmp_path / "second.log").start()
    daemons.append(second)
    second.wait_for_log(r"daemon\.started")
    second.wait_for_log(r"instance\.singletons", timeout=30)  # its first beats and poll ticks have run
    assert first.process is not None and second.process is not None

    lines = wait_until(lambda: (found := instance_lines(config)) and len(found) == 2 and found, "two instances listed")
    pids = {int(re.search(r"pid (\d+)", line).group(1)): line for line in lines}  # type: ignore[union-attr]
    assert set(pids) == {first.process.pid, second.process.pid}
    assert pids[first.process.pid].endswith("feeds leased 6")  # all of them, their polls in flight
    assert pids[second.process.pid].endswith("feeds leased 0")
    assert "started " in lines[0] and "last heartbeat " in lines[0]
    status = json.loads(run_cli("status", "--json", config=config).stdout)
    assert {(one["pid"], one["feeds_leased"]) for one in status["instances"]} == {
        (first.process.pid, 6),
        (second.process.pid, 0),
    }
    time.sleep(3)  # more poll ticks of the second instance, every feed still leased to the first
    gate.set()
    first.wait_for_log(r"poll\.done", count=len(names))
    assert sorted(r.path for r in feed_server.requests) == sorted(f"/{name}.xml" for name in names)  # each once

    # Exactly one instance runs the singletons; killed, it hands them to the other.
    runs = {d: [line for line in d.log().splitlines() if "instance.singletons" in line] for d in (first, second)}
    holders = [d for d, lines in runs.items() if any("runs=true" in line.lower() for line in lines)]
    assert len(holders) == 1, runs
    [holder] = holders
    [other] = [d for d in (first, second) if d is not holder]
    holder.kill()  # kill -9: its session ends, and the lock with it
    other.wait_for_log(r"instance\.singletons.*runs=(?i:true)", timeout=60)

    assert other.stop() == 0  # a clean stop takes it off the list at once
    assert other.process is not None
    assert all(f"pid {other.process.pid} " not in line for line in instance_lines(config))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_the_template_unit_for_more_instances_verifies(tmp_path):
    template = Path(__file__).resolve().parent.parent / "systemd" / "news-monitor@.service"
    executable = shutil.which("news-monitor") or str(Path(sys.executable).parent / "news-monitor")
    text = template.read_text()
    assert "StateDirectory=news-monitor-%i" in text and "EnvironmentFile=/etc/news-monitor/secrets.env" in text
    unit = tmp_path / "news-monitor@2.service"  # an instance of the template, as systemctl would start it
    unit.write_text(text.replace("/opt/news-monitor/bin/news-monitor", executable))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "news-monitor@2" not in result.stderr, result.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, check=False
    )
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert exposure is not None and float(exposure.group(1)) <= 2.0, security.stdout + security.stderr
