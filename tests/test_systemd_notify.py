"""The sd_notify conversation with systemd, received on a real unix datagram socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from conftest import BACKFILL, rss, write_config


def receive_until(sock: socket.socket, wanted: str, messages: list[str], since: int = 0, timeout: float = 60) -> int:
    """Receive into ``messages`` until one from index ``since`` on contains ``wanted``; its index."""
    deadline = time.monotonic() + timeout
    while not any(wanted in message for message in messages[since:]):
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            raise AssertionError(f"no {wanted!r} from the daemon; got {messages}") from None
    return next(i for i in range(since, len(messages)) if wanted in messages[i])


def test_ready_reloading_watchdog_and_stopping(tmp_path, feed_server):
    feed_server.route("/wire.xml", rss(*BACKFILL))
    config = write_config(tmp_path / "config", feeds=[{"name": "wire", "url": feed_server.url("/wire.xml")}])
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            messages: list[str] = []
            receive_until(sock, "READY=1", messages)
            assert any(m.startswith("READY=1") and "STATUS=watching 1 feed" in m for m in messages)
            # WatchdogSec=1s: pings every half second, from the event loop.
            first = receive_until(sock, "WATCHDOG=1", messages, since=len(messages))
            receive_until(sock, "WATCHDOG=1", messages, since=first + 1, timeout=10)  # and again: a rhythm

            process.send_signal(signal.SIGHUP)
            reloading = receive_until(sock, "RELOADING=1", messages, since=len(messages))
            assert "MONOTONIC_USEC=" in messages[reloading]
            receive_until(sock, "READY=1", messages, since=reloading + 1)

            process.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", messages)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
