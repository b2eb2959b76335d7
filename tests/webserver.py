"""The dashboard in tests: `news-monitor web` in a subprocess on a port of its own, and a free port.

    with WebProcess(config, log_path).start() as web:   # waits for web.listening
        httpx.get(web.url + "feeds")

A daemon serves the same dashboard: ``write_config(..., web={"enabled": True, "port": 0})`` and read its
address from the ``web.listening`` log line (:func:`listening_url`).
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from conftest import cli_env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (another process may take it before it is used; port 0 is safer)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listening_url(log_text: str) -> str | None:
    """The dashboard's base URL from a ``web.listening`` log line (ends in ``/``), or None."""
    found = re.search(r"web\.listening url=(http://\S+)", log_text)
    return found.group(1) if found else None


class WebProcess:
    """``news-monitor web --config CONFIG`` in a subprocess; ``url`` once it listens."""

    def __init__(self, config: Path, log_path: Path, *args: str, env: dict[str, str] | None = None):
        self.config = config
        self.log_path = log_path
        self.args = args
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> WebProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "web", "--config", str(self.config), "--port", "0", *self.args],
                stdout=log,
                stderr=log,
                env={**cli_env(), **self.env},
                cwd=self.config,
            )
        deadline = time.monotonic() + timeout
        while not (url := listening_url(self.log())):
            if self.process.poll() is not None:
                raise AssertionError(f"news-monitor web exited ({self.process.returncode}):\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"news-monitor web did not listen within {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        self.url = url
        return self

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)

    def __enter__(self) -> WebProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
