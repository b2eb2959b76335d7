"""The daemon's local control socket: one request per connection, one JSON line each way.

    news-monitor poll --feed NAME ── {"command": "poll", "feed": "NAME"}\\n ──▶ news-monitor run
                                  ◀── {"ok": true, "pid": 4242, "reports": [...]}\\n

The socket is a Unix domain socket beside the database (``var/news-monitor.sock``,
or ``control_socket``), mode 0600: only the daemon's user (and root) may connect,
and the peer's uid is checked as well. Everything a client sends is bounded: one
line of at most :data:`MAX_REQUEST_BYTES`, read within :data:`IO_SECONDS`, at most
:data:`MAX_CLIENTS` connections at a time; a reply is at most
:data:`MAX_REPLY_BYTES`. Garbage gets a one-line refusal, never a traceback.

One daemon owns the socket of a database: it holds an exclusive ``flock`` on
``<socket>.lock`` while it listens. A second daemon on the same database finds
the lock taken, leaves the live socket alone and runs without one. A socket
file left by a daemon that was killed (its lock went with it) is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.config import MonitorSettings
from monitor.errors import ControlError

__all__ = [
    "ANSWER_SECONDS",
    "REPORT_FIELDS",
    "ControlServer",
    "Request",
    "ask",
    "failure",
    "parse_request",
    "socket_path",
]

log = logging.getLogger("monitor.control")

MAX_REQUEST_BYTES = 4096
MAX_REPLY_BYTES = 256 * 1024
MAX_CLIENTS = 8
IO_SECONDS = 5.0  # to send a request, or to take a reply once it is written
ANSWER_SECONDS = 300.0  # the longest the daemon works on one request (a poll: fetch, parse, match)
COMMANDS = frozenset({"poll"})
# What a poll's answer says of each feed polled, under "reports" (the fields of pipeline.PollReport).
REPORT_FIELDS = ("feed", "ok", "new_items", "alerts", "not_modified", "error", "stage")
_SUN_PATH_MAX = 107  # bytes of a socket path the kernel takes (sun_path, less the final NUL)


def socket_path(settings: MonitorSettings) -> Path:
    """Where the daemon of this database listens: ``control_socket``, else the database's name with ``.sock``."""
    if settings.control_socket is not None:
        return settings.control_socket
    if isinstance(settings.database, str):  # a PostgreSQL URL: no file to sit beside
        return Path("var/news-monitor.sock")
    return settings.database.with_suffix(".sock")


@dataclass(frozen=True)
class Request:
    command: str
    feed: str


Reply = dict[str, Any]
Handler = Callable[[Request], Awaitable[Reply]]


def failure(kind: str, message: str) -> Reply:
    """A refusal: ``kind`` (``not_found``, ``refused``, ``busy``, ``stopping``, ``internal``) and a message."""
    return {"ok": False, "kind": kind, "error": message}


def parse_request(line: bytes) -> Request:
    """One request line; ControlError says what is wrong with it."""
    try:
        document = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested beyond the parser's depth
        raise ControlError("a request is one JSON object on one line") from None
    if not isinstance(document, dict):
        raise ControlError("a request is one JSON object on one line")
    command, feed = document.get("command"), document.get("feed")
    if not isinstance(command, str) or command not in COMMANDS:
        raise ControlError(f"unknown command; known: {', '.join(sorted(COMMANDS))}")
    if not isinstance(feed, str) or not feed:
        raise ControlError("poll needs a feed name")
    return Request(command, feed)


def _encode(document: Reply | dict[str, str]) -> bytes:
    # ASCII only and no raw newline: a JSON string escapes both.
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


# --- the daemon's side --------------------------------------------------------------------


class ControlServer:
    """Listens on the control socket in the daemon's event loop; ``handler`` answers each request."""

    def __init__(self, path: Path, handler: Handler, *, answer_seconds: float = ANSWER_SECONDS):
        self.path = path
        self.handler = handler
        self.answer_seconds = answer_seconds
        self._server: asyncio.AbstractServer | None = None
        self._lock_fd: int | None = None
        self._inode: tuple[int, int] | None = None
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> bool:
        """Listen. False, and logged, when another daemon owns the socket or the path cannot be one."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self._lock():
                note = "another daemon on this database answers there; this one runs without a control socket"
                log.warning("control.in_use", extra={"socket": str(self.path), "note": note})
                return False
            sock = self._bind()
        except OSError as exc:
            self._unlock()
            log.error("control.unavailable", extra={"socket": str(self.path), "error": str(exc)})
            return False
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST_BYTES)
        log.info("control.listening", extra={"socket": str(self.path)})
        return True

    def stop_listening(self) -> None:
        """No new connections: the socket file goes (if it is still ours) and the lock is released."""
        if self._server is not None:
            self._server.close()
        with contextlib.suppress(OSError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._inode:
                self.path.unlink()
        self._inode = None
        self._unlock()

    async def close(self, grace: float = 1.0) -> None:
        """Stop listening, give the requests in progress ``grace`` seconds to be answered, cancel the rest.

        Called once the polls are drained: what a request waited for is done by then.
        """
        self.stop_listening()
        clients = list(self._clients)
        if clients:
            _, pending = await asyncio.wait(clients, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._server = None

    def _lock(self) -> bool:
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _bind(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISSOCK(os.lstat(self.path).st_mode):
                raise ControlError(f"{self.path} exists and is not a socket; left alone")
            self.path.unlink()  # we hold the lock, so whoever bound it is gone: a stale socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            umask = os.umask(0o177)  # born 0600: no moment when others may connect
            try:
                with _address(self.path) as address:
                    sock.bind(address)
            finally:
                os.umask(umask)
            os.chmod(self.path, 0o600)
            st = os.lstat(self.path)
            self._inode = (st.st_dev, st.st_ino)
            sock.listen(MAX_CLIENTS)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        return sock

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            if len(self._clients) > MAX_CLIENTS:
                reply = failure("busy", f"busy: more than {MAX_CLIENTS} control connections at once")
            elif not _peer_allowed(writer):
                reply = failure("refused", "refused: only the daemon's own user may use its control socket")
            else:
                reply = await self._answer(reader)
            writer.write(_bounded(reply))
            async with asyncio.timeout(IO_SECONDS):
                await writer.drain()
        except (TimeoutError, ConnectionError):
            writer.transport.abort()  # a client that does not read its reply: dropped
        finally:
            self._clients.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> Reply:
        try:
            async with asyncio.timeout(IO_SECONDS):
                line = await reader.readline()
        except TimeoutError:
            return failure("refused", f"no request line within {IO_SECONDS:g} s")
        except ValueError:  # the stream's limit: a line longer than a request may be
            return failure("refused", f"a request is at most {MAX_REQUEST_BYTES} bytes")
        if not line.endswith(b"\n"):
            return failure("refused", "a request ends with a newline")
        try:
            request = parse_request(line)
        except ControlError as exc:
            return failure("refused", str(exc))
        try:
            async with asyncio.timeout(self.answer_seconds):
                return await self.handler(request)
        except TimeoutError:
            return failure("internal", f"no answer within {self.answer_seconds:g} s; the daemon's log says more")
        except Exception as exc:  # a bug: answered, logged, and the daemon goes on
            log.exception("control.failed", extra={"command": request.command, "error": repr(exc)})
            return failure("internal", f"internal error: {exc!r}")


def _peer_allowed(writer: asyncio.StreamWriter) -> bool:
    """The connecting process runs as the daemon's user, or as root (the 0600 mode says so too)."""
    sock = writer.get_extra_info("socket")
    try:
        _, uid, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except (OSError, AttributeError):  # no SO_PEERCRED here: the file mode is the guard
        return True
    return uid in (os.geteuid(), 0)


def _bounded(reply: Reply) -> bytes:
    line = _encode(reply)
    if len(line) > MAX_REPLY_BYTES:
        line = _encode(failure("internal", f"the answer is longer than {MAX_REPLY_BYTES} bytes"))
    return line


# --- the client's side --------------------------------------------------------------------


def ask(path: Path, request: Request, *, timeout: float = ANSWER_SECONDS + 2 * IO_SECONDS) -> Reply | None:
    """Ask the daemon listening at ``path``; its reply, or None when no daemon listens there.

    None for no socket file, or a stale one (connection refused): the caller
    then does the work itself. ControlError when a daemon is there but cannot
    be asked (permissions) or gives no usable answer within ``timeout``.
    """
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(IO_SECONDS)
        try:
            with _address(path) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return None
        except OSError as exc:
            raise ControlError(f"cannot reach the running daemon at {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(_encode({"command": request.command, "feed": request.feed}))
            line = _read_line(sock, deadline)
        except TimeoutError:
            raise ControlError(f"the running daemon did not answer within {timeout:g} s (socket {path})") from None
        except ControlError:
            raise
        except OSError as exc:
            raise ControlError(f"the running daemon at {path} dropped the request: {exc.strerror or exc}") from None
    finally:
        sock.close()
    try:
        reply = json.loads(line)
    except (ValueError, RecursionError):
        reply = None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ControlError(f"the running daemon at {path} gave an unreadable answer")
    return reply


def _read_line(sock: socket.socket, deadline: float) -> bytes:
    received = bytearray()
    while not received.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            raise ControlError("the running daemon closed the connection without answering (is it stopping?)")
        received += chunk
        if len(received) > MAX_REPLY_BYTES:
            raise ControlError(f"the running daemon's answer is longer than {MAX_REPLY_BYTES} bytes")
    return bytes(received)


@contextlib.contextmanager
def _address(path: Path) -> Iterator[str]:
    """``path`` as a socket address. A path longer than the kernel takes goes through its directory's fd."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{directory}/{path.name}"
    finally:
        os.close(directory)
