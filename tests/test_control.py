"""`news-monitor poll --feed NAME` beside a running daemon asks the daemon to poll, over
its local control socket, instead of opening the database as a second writer; with no
daemon listening (no socket, or one left by a kill -9) it polls by itself. The socket
refuses garbage, huge and slow requests with a one-line answer and stays usable."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DaemonProcess, Story, rss, run_cli, write_config

from monitor import control
from monitor.errors import ControlError

QUIET = Story("w-1", "Quiet day", "Nothing happened.", datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
CEASEFIRE = Story("w-2", "Ceasefire agreed in Sudan", "Both sides agreed to a ceasefire on Friday.", datetime.now(UTC))


def wire_config(tmp_path: Path, feed_server, webhook, **settings: object) -> Path:
    feed_server.route("/wire.xml", rss(QUIET))
    # An hour between polls: any later poll of wire is one somebody asked for.
    return write_config(
        tmp_path / "config",
        feeds=[{"name": "wire", "url": feed_server.url("/wire.xml"), "interval": "1h"}],
        channels={"hook": {"url": webhook.json_url("/hook")}},
        rules=[{"name": "ceasefire", "query": "ceasefire", "notify": ["hook"]}],
        poll={"min_interval": "1s", "default_interval": "1h", "max_interval": "2h"},
        **settings,
    )


def socket_file(config: Path) -> Path:
    return config / "state" / "news-monitor.sock"


def start(config: Path, log: Path, daemons: list[DaemonProcess]) -> DaemonProcess:
    daemon = DaemonProcess(config, log).start()
    daemons.append(daemon)
    daemon.wait_for_log(r"poll\.done feed=wire")
    return daemon


def test_poll_feed_asks_the_running_daemon(tmp_path, feed_server, webhook, daemons):
    config = wire_config(tmp_path, feed_server, webhook)
    daemon = start(config, tmp_path / "daemon.log", daemons)
    daemon.wait_for_log(r"control\.listening")
    assert stat.S_IMODE(socket_file(config).stat().st_mode) == 0o600

    feed_server.route("/wire.xml", rss(CEASEFIRE, QUIET))
    result = run_cli("poll", "--feed", "wire", config=config)
    assert result.returncode == 0, result.stderr
    assert f"asked the running daemon (pid {daemon.process.pid}, {socket_file(config)}) to poll wire" in result.stderr
    assert (
        "polled 1 feed: 1 ok, 0 failed; 1 new or changed item; 1 alert queued; the daemon delivers them"
        in result.stderr
    )
    assert "poll.done" not in result.stderr  # the CLI polled nothing itself: it opened no database to write
    daemon.wait_for_log(r"control\.poll feed=wire")
    daemon.wait_for_log(r"poll\.done feed=wire .*fresh=1 .*alerts=1")
    [alert] = webhook.wait_for(1, timeout=30)
    assert alert.json["title"].startswith("Ceasefire agreed in Sudan")

    # --once too; a failing poll is reported the same way; an unknown feed is a usage error, as before.
    feed_server.route("/wire.xml", b"gone", status=500, content_type="text/plain")
    failed = run_cli("poll", "--once", "--feed", "wire", config=config)
    assert failed.returncode == 0, failed.stderr
    assert "polled 1 feed: 0 ok, 1 failed;" in failed.stderr and "  wire: " in failed.stderr and "500" in failed.stderr
    unknown = run_cli("poll", "--feed", "nope", config=config)
    assert unknown.returncode == 2
    assert "no feed named 'nope' (feeds: wire)" in unknown.stderr
    assert "Traceback" not in unknown.stderr + failed.stderr

    assert daemon.stop() == 0
    assert not socket_file(config).exists()  # removed on shutdown
    # With the daemon gone, the CLI polls by itself.
    feed_server.route("/wire.xml", rss(CEASEFIRE, QUIET))
    alone = run_cli("poll", "--feed", "wire", config=config)
    assert alone.returncode == 0, alone.stderr
    assert "asked the running daemon" not in alone.stderr and "poll.done feed=wire" in alone.stderr


def test_a_stale_socket_left_by_kill_9_is_no_daemon(tmp_path, feed_server, webhook, daemons):
    config = wire_config(tmp_path, feed_server, webhook)
    daemon = start(config, tmp_path / "daemon.log", daemons)
    daemon.wait_for_log(r"control\.listening")
    daemon.kill()  # SIGKILL: the socket file stays behind
    assert stat.S_ISSOCK(socket_file(config).lstat().st_mode)

    result = run_cli("poll", "--feed", "wire", config=config)
    assert result.returncode == 0, result.stderr
    assert "asked the running daemon" not in result.stderr
    assert "poll.done feed=wire" in result.stderr  # polled by itself
    assert "polled 1 feed: 1 ok, 0 failed" in result.stderr

    # The next daemon replaces the stale socket and answers on it.
    again = DaemonProcess(config, tmp_path / "daemon.log").start()
    daemons.append(again)
    again.wait_for_log(r"control\.listening")
    asked = run_cli("poll", "--feed", "wire", config=config)
    assert f"asked the running daemon (pid {again.process.pid}" in asked.stderr, asked.stderr
    assert again.stop() == 0


def test_a_second_daemon_on_the_same_database_leaves_the_live_socket_alone(
    tmp_path, feed_server, webhook, daemons, pg_dsn
):
    # On PostgreSQL (several instances allowed); on SQLite the second refuses to start (test_instances.py).
    sock = tmp_path / "config" / "state" / "news-monitor.sock"
    config = wire_config(tmp_path, feed_server, webhook, database=pg_dsn, control_socket=str(sock))
    first = start(config, tmp_path / "first.log", daemons)
    first.wait_for_log(r"control\.listening")
    second = DaemonProcess(config, tmp_path / "second.log").start()
    daemons.append(second)
    [warning] = second.wait_for_log(r"control\.in_use")
    assert "runs without a control socket" in warning
    asked = run_cli("poll", "--feed", "wire", config=config)
    assert f"asked the running daemon (pid {first.process.pid}" in asked.stderr, asked.stderr

    assert second.stop() == 0  # does not take the first one's socket with it
    asked = run_cli("poll", "--feed", "wire", config=config)
    assert f"asked the running daemon (pid {first.process.pid}" in asked.stderr, asked.stderr
    assert first.stop() == 0
    assert not socket_file(config).exists()


def raw(path: Path, payload: bytes, *, end: bool) -> dict:
    """Send ``payload`` as it is (then end the request if ``end``); the one-line answer, decoded."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        try:
            sock.sendall(payload)
            if end:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it was all sent: the answer is waiting
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return json.loads(answer)


def test_the_control_socket_refuses_hostile_input_and_stays_usable(tmp_path, feed_server, webhook, daemons):
    config = wire_config(tmp_path, feed_server, webhook)
    daemon = start(config, tmp_path / "daemon.log", daemons)
    daemon.wait_for_log(r"control\.listening")
    path = socket_file(config)

    cases = {
        b"hello\n": "one JSON object",
        b"\xff\xfe\x00garbage\n": "one JSON object",
        b"[" * 4000 + b"\n": "one JSON object",  # nested beyond the JSON parser's depth
        b'["poll", "wire"]\n': "one JSON object",
        b'{"command": "shutdown"}\n': "unknown command",
        b'{"command": "poll", "feed": 7}\n': "needs a feed name",
        b'{"command": "poll", "feed": "wire"}': "ends with a newline",  # then EOF
        b"x" * 1_000_000: "at most 4096 bytes",
    }
    for payload, expected in cases.items():
        answer = raw(path, payload, end=len(payload) < control.MAX_REQUEST_BYTES)
        assert answer["ok"] is False and expected in answer["error"], (payload[:40], answer)

    # Slow clients: each is answered (and dropped) within the read budget, and never
    # more than a few at a time are served: the others are told the daemon is busy.
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(control.MAX_CLIENTS + 4)]
    try:
        for sock in idle:
            sock.settimeout(30)
            sock.connect(str(path))
            sock.sendall(b'{"command": "po')  # and nothing more
        answers = [json.loads(sock.makefile("rb").readline()) for sock in idle]
    finally:
        for sock in idle:
            sock.close()
    errors = [answer["error"] for answer in answers]
    assert sum("no request line within" in error for error in errors) >= 1
    assert sum(error.startswith("busy") for error in errors) >= 4
    assert all(answer["ok"] is False for answer in answers)

    # Still alive and still answering.
    asked = run_cli("poll", "--feed", "wire", config=config)
    assert f"asked the running daemon (pid {daemon.process.pid}" in asked.stderr, asked.stderr
    assert daemon.process.poll() is None and "Traceback" not in daemon.log()
    assert daemon.stop() == 0


# --- the protocol module on its own ------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"command": "poll", "feed": "wire"}\n', control.Request("poll", "wire")),
        (b'{"command": "poll", "feed": "wire", "future": 1}\n', control.Request("poll", "wire")),
    ],
)
def test_a_request_is_one_json_object(line, expected):
    assert control.parse_request(line) == expected


@pytest.mark.parametrize(
    "line",
    [b"", b"null\n", b"42\n", b'"poll"\n', b"{}\n", b'{"command": "poll"}\n', b'{"command": "poll", "feed": ""}\n',
     b'{"command": "POLL", "feed": "x"}\n', b'{"command": ["poll"], "feed": "x"}\n', b"\xc3\x28\n", b"[" * 100_000],
)  # fmt: skip
def test_anything_else_is_refused_with_a_reason(line):
    with pytest.raises(ControlError):
        control.parse_request(line)


def test_the_client_tells_no_daemon_from_a_daemon_that_does_not_answer(tmp_path):
    assert control.ask(tmp_path / "none.sock", control.Request("poll", "x")) is None
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(stale))  # bound, never listening, then closed: what kill -9 leaves
    assert control.ask(stale, control.Request("poll", "x")) is None

    # A listener that accepts and never answers: the client gives up in time, with a reason.
    mute = tmp_path / "mute.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(mute))
    listener.listen(1)
    try:
        started = time.monotonic()
        with pytest.raises(ControlError, match="did not answer within 1 s"):
            control.ask(mute, control.Request("poll", "x"), timeout=1)
        assert time.monotonic() - started < 30
    finally:
        listener.close()


def test_a_socket_path_longer_than_the_kernel_takes_still_works(tmp_path):
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 5)
    deep.mkdir(parents=True)
    path = deep / "news-monitor.sock"
    assert len(os.fsencode(path)) > 108

    async def answer(request: control.Request) -> control.Reply:
        return {"ok": True, "feed": request.feed}

    async def scenario() -> dict:
        server = control.ControlServer(path, answer)
        assert await server.start()
        try:
            return await asyncio.to_thread(control.ask, path, control.Request("poll", "wire"))
        finally:
            await server.close()

    assert asyncio.run(scenario()) == {"ok": True, "feed": "wire"}
    assert not path.exists()


def test_a_file_in_the_way_is_left_alone(tmp_path):
    path = tmp_path / "news-monitor.sock"
    path.write_text("not a socket")

    async def answer(request: control.Request) -> control.Reply:
        return {"ok": True}

    async def scenario() -> bool:
        server = control.ControlServer(path, answer)
        started = await server.start()
        await server.close()
        return started

    assert asyncio.run(scenario()) is False
    assert path.read_text() == "not a socket"
