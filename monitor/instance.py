"""Who this daemon is among the instances of one database, and the rule of one daemon per SQLite file.

On SQLite one daemon owns the database: ``run`` holds an exclusive ``flock`` on ``<database>.lock``
for as long as it runs, and a second ``run`` on the same file stops at once with one line naming the
first one's pid. The lock goes with the process, however it ends, so a daemon that was killed leaves
nothing to clean up. On PostgreSQL any number of instances may run: they share the feeds by lease and
register in the ``instances`` table (see :mod:`monitor.store.protocol`), which is what ``status`` lists.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from datetime import datetime, timedelta
from pathlib import Path

from monitor import __version__
from monitor.errors import MonitorError
from monitor.store.records import Instance

__all__ = ["HEARTBEAT_SECONDS", "SqliteDaemonLock", "dead_after", "this_instance"]

# How often a live instance says so; one silent for DEAD_AFTER_BEATS of them is dead.
HEARTBEAT_SECONDS = 5.0
DEAD_AFTER_BEATS = 4
_MAX_PID_TEXT = 32


def dead_after() -> timedelta:
    """How old a heartbeat may be before its instance counts as dead."""
    return timedelta(seconds=HEARTBEAT_SECONDS * DEAD_AFTER_BEATS)


def this_instance(now: datetime) -> Instance:
    """This process as an instance of its database, started at ``now``; its id names its feed leases."""
    host = socket.gethostname()[:255] or "localhost"
    pid = os.getpid()
    # The pid alone repeats across machines and restarts; a few random bytes keep every start apart.
    return Instance(f"{host}:{pid}:{secrets.token_hex(4)}", host, pid, now, __version__)


class SqliteDaemonLock:
    """The exclusive lock of the one daemon that runs on a SQLite file."""

    def __init__(self, database: Path):
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise MonitorError saying which daemon holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise MonitorError(f"cannot create the daemon lock {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            database = self.path.with_name(self.path.name.removesuffix(".lock"))
            raise MonitorError(
                f"another daemon{who} already runs on database {database}; stop it first "
                "(one daemon per SQLite file: run several instances on PostgreSQL)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # releases the flock
            self._fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _MAX_PID_TEXT, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
