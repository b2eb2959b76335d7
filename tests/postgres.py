"""A real PostgreSQL server for the tests: started once per test session, a fresh database per test.

The server is Debian's PostgreSQL (``apt-get install postgresql``; ``scripts/test`` installs it when
it is missing). Its programs are not on PATH: they are found through ``dpkg -L postgresql-NN`` or
under ``/usr/lib/postgresql/*/bin``. ``initdb`` refuses to run as root, so as root the cluster is
created and run as the ``postgres`` user, in a temporary directory of its own, listening on
127.0.0.1 on a free port (and on a Unix socket in that directory), with trust authentication.
Durability is off (``fsync``, ``synchronous_commit``): the data lives as long as the session.

Each test gets its own database, copied from a template that already holds the news-monitor schema
(``CREATE DATABASE ... TEMPLATE``: a file copy, far faster than migrating each time); ``pg_empty``
gives one without the schema, for tests of migrating itself.

There is no skipping: without PostgreSQL, a test that asks for it fails and says how to install it.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL is not installed: the PostgreSQL tests need its server programs (initdb, pg_ctl). "
    "Run scripts/test, which installs it, or: apt-get install -y --no-install-recommends postgresql"
)
TEMPLATE = "news_monitor_template"
START_TIMEOUT_S = 60


def find_bin_dir() -> Path | None:
    """The directory holding initdb and pg_ctl of the newest PostgreSQL installed, else None."""
    candidates: list[Path] = []
    try:
        packages = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}\n", "postgresql-[0-9]*"],
            capture_output=True, text=True, timeout=30, check=False,
        ).stdout.split()  # fmt: skip
        for package in packages:
            listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, timeout=30, check=False)
            candidates += [Path(line).parent for line in listing.stdout.splitlines() if line.endswith("/bin/initdb")]
    except (OSError, subprocess.SubprocessError):
        pass  # not a Debian system: look in the usual place
    candidates += [Path(path).parent for path in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [path for path in candidates if (path / "initdb").is_file() and (path / "pg_ctl").is_file()]

    def version(path: Path) -> tuple[int, ...]:
        digits = "".join(ch if ch.isdigit() else " " for ch in str(path))
        return tuple(int(part) for part in digits.split()) or (0,)

    return max(found, key=version) if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PostgresServer:
    """One running PostgreSQL cluster in a temporary directory."""

    bin_dir: Path
    directory: Path
    port: int = 0
    user: str = "postgres"
    _as_postgres: bool = False
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    running: bool = False
    made: list[str] = field(default_factory=list)  # test databases not dropped yet
    durable: bool = False  # True: fsync as in production (benchmarks); False: nothing waits for the disk

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str, timeout: float = START_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / program), *args]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, cwd="/")

    def start(self) -> None:
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root, PostgreSQL needs a 'postgres' user to run as (its package creates one)")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        else:
            self.user = pwd.getpwuid(os.geteuid()).pw_name
        os.chmod(self.directory, 0o700)
        made = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8", "--no-sync")
        if made.returncode:
            pytest.fail(f"initdb failed in {self.directory}: {(made.stderr or made.stdout).strip()[-800:]}")
        for attempt in range(5):
            self.port = _free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory}"
                " -c max_connections=100"
            )
            if not self.durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            started = self._run("pg_ctl", "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data),
                                "-l", str(self.log), "-o", options)  # fmt: skip
            if started.returncode == 0:
                self.running = True
                return
            time.sleep(0.2 * (attempt + 1))  # the port was taken between the probe and the start: another one
        tail = self.log.read_text(errors="replace")[-800:] if self.log.exists() else started.stderr
        pytest.fail(f"PostgreSQL did not start in {self.directory}: {tail.strip()}")

    def stop(self) -> None:
        if self.running:
            self.running = False
            stopped = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30")
            if stopped.returncode:  # not down in time: end the server's process itself before its files go
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)

    def execute(self, sql: str, database: str = "postgres") -> None:
        """One statement outside a transaction (CREATE DATABASE takes none)."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self, *, template: str = TEMPLATE) -> str:
        """A new database (a copy of ``template``): its DSN."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        self.made.append(name)
        return self.dsn(name)

    def drop_databases(self) -> None:
        """Drop the test databases made so far (their connections cut): a thousand files each, not to pile up."""
        while self.made:
            self.execute(f'DROP DATABASE IF EXISTS "{self.made.pop()}" WITH (FORCE)')


OWNER_FILE = "owner.pid"  # the test process a server belongs to


def _stop_abandoned(bin_dir: Path) -> None:
    """Stop the servers of earlier test runs whose process is gone (killed: no atexit ran)."""
    for directory in Path(tempfile.gettempdir()).glob("news-monitor-pg-*"):
        try:
            owner = int((directory / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue  # that run is still going
        abandoned = PostgresServer(bin_dir, directory)
        abandoned._as_postgres = os.geteuid() == 0
        abandoned.running = (directory / "data" / "postmaster.pid").exists()
        abandoned.stop()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, killed and not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return " Z" not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:3]
    except OSError:
        return True


_server: PostgresServer | None = None
_databases: dict[str, str] = {}


def server() -> PostgresServer:
    """The session's PostgreSQL server, started on first use, with a template database holding the schema."""
    global _server
    if _server is not None and _server.running:
        return _server
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(INSTALL_HINT)
    _stop_abandoned(bin_dir)
    started = PostgresServer(bin_dir, Path(tempfile.mkdtemp(prefix="news-monitor-pg-")))
    atexit.register(started.stop)  # the session fixture stops it; this covers a server started without it
    (started.directory / OWNER_FILE).write_text(str(os.getpid()))
    try:
        started.start()
        started.execute(f'CREATE DATABASE "{TEMPLATE}"')
        from monitor.store.postgres import PostgresStorage

        PostgresStorage.open(started.dsn(TEMPLATE)).close()
        started.execute("CREATE DATABASE empty_template TEMPLATE template0")
    except BaseException:
        started.stop()
        raise
    _server = started
    return started


def database_for(key: object) -> str:
    """The DSN of a database of its own for ``key`` (a test's tmp_path, say): made on first use, then the same."""
    name = str(key)
    if name not in _databases:
        _databases[name] = server().new_database()
    return _databases[name]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server; stopped when the session ends, however it ends."""
    try:
        yield server()
    finally:
        if _server is not None:
            _server.stop()


@pytest.fixture(autouse=True)
def pg_drop_databases() -> Iterator[None]:
    """After each test, drop the databases it made (nothing to do for a test that made none)."""
    yield
    _databases.clear()
    if _server is not None and _server.running and _server.made:
        _server.drop_databases()


@pytest.fixture
def pg_dsn(postgres: PostgresServer) -> str:
    """The DSN of a fresh database of its own for this test, already holding the schema."""
    return postgres.new_database()


@pytest.fixture
def pg_empty(postgres: PostgresServer) -> Callable[[], str]:
    """Make fresh empty databases (no schema): the DSN of each."""
    return lambda: postgres.new_database(template="empty_template")
