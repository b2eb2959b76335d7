"""The 1,000-feed poll bench with 1, 2 and 3 instances on one PostgreSQL database.

Serves FEEDS RSS feeds (as bench/poll.py: 20 news items each, an ETag, a random LATENCY per answer) from a feed
server in a process of its own, starts a PostgreSQL 15 (tests/postgres.py), and for each instance count runs
real daemons (`news-monitor run`, each a process) on one database:

1. first cycle: every feed made due at once; the time until every feed has been polled (first fetch stored);
2. 304 cycle: every feed due again; every answer is 304 Not Modified;
3. how evenly the feeds were shared: polls per instance in each cycle;
4. with 2 or more instances: every feed due once more, one instance killed (SIGKILL) while it polls; the time
   from the kill until every feed it held leased has been polled by another instance (the lease running out).

The first fetch's entities would be extracted in the background by every instance at once (enrichment is not
shared out yet), which would measure spaCy, not polling: a trigger in the bench's database marks stored items
enriched. Times are read from the database (each poll's last_polled_at), all on this machine's clock.

    .venv/bin/python bench/cluster.py [--feeds 1000] [--instances 1,2,3] [--latency 0.05-0.25] [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from poll import serve  # noqa: E402
from postgres import server as postgres_server  # noqa: E402

TIMEOUT_S, PARSE_TIMEOUT_S = 10, 5  # the feed lease: 2 x (10 + 5) = 30 s
POLLED = re.compile(r"(poll\.done|poll\.not_modified|poll\.failed) feed=")


def write_config(directory: Path, port: int, feeds: int, dsn: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    monitor = {
        "database": dsn,
        "poll": {"concurrency": 32, "per_host": 32, "timeout": f"{TIMEOUT_S}s", "parse_timeout": f"{PARSE_TIMEOUT_S}s",
                 "default_interval": "1h", "min_interval": "1h", "max_interval": "2h"},
        "web": {"enabled": False},
        "health": {"enabled": False},
        "feeds": [{"name": f"feed-{n}", "url": f"http://127.0.0.1:{port}/feed-{n}.xml"} for n in range(feeds)],
    }  # fmt: skip
    (directory / "monitor.yaml").write_text(json.dumps(monitor))
    (directory / "rules.yaml").write_text(
        json.dumps({"rules": [{"name": "xi-putin", "query": "Xi AND Putin", "notify": ["console"]}]})
    )
    (directory / "entities.yaml").write_text((REPO / "config" / "entities.yaml").read_text())
    return directory


class Daemon:
    def __init__(self, config: Path, log: Path):
        self.log_path = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(config)],
                stdout=out, stderr=out, cwd=config, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.instance = ""

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def polls(self) -> int:
        return len(POLLED.findall(self.text()))

    def wait_started(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"daemon\.started .*?instance=(\S+)", self.text())
            if found:
                self.instance = found.group(1)
                return
            if self.process.poll() is not None:
                raise SystemExit(f"a daemon exited at start:\n{self.text()}")
            time.sleep(0.1)
        raise SystemExit(f"a daemon did not start within {timeout}s:\n{self.text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def make_due(conn: psycopg.Connection, where: str = "TRUE") -> datetime:
    now = datetime.now(UTC)
    conn.execute(f"UPDATE feeds SET next_poll_at = %s WHERE {where}", [now])
    return now


def wait_polled(conn: psycopg.Connection, since: datetime, feeds: int, timeout: float = 180) -> datetime:
    """When the last of ``feeds`` feeds was polled at or after ``since``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count, last = conn.execute("SELECT count(*), max(last_polled_at) FROM feeds WHERE last_polled_at >= %s",
                                   [since]).fetchone()  # fmt: skip
        if count >= feeds:
            return last
        time.sleep(0.2)
    missing = conn.execute(
        "SELECT name, next_poll_at, leased_by, leased_until, last_polled_at FROM feeds"
        " WHERE last_polled_at IS NULL OR last_polled_at < %s LIMIT 5",
        [since],
    ).fetchall()
    raise SystemExit(f"not every feed was polled within {timeout}s; not polled: {missing}")


def cycle(conn: psycopg.Connection, daemons: list[Daemon], feeds: int) -> tuple[float, list[int]]:
    before = [daemon.polls() for daemon in daemons]
    started = make_due(conn)
    last = wait_polled(conn, started, feeds)
    time.sleep(1.0)  # the last poll's log line
    return (last - started).total_seconds(), [daemon.polls() - b for daemon, b in zip(daemons, before, strict=True)]


def run_one(port: int, feeds: int, instances: int, work: Path) -> dict[str, object]:
    server = postgres_server()
    dsn = server.new_database()
    config = write_config(work / f"config-{instances}", port, feeds, dsn)
    from monitor.config import load_config
    from monitor.store.postgres import PostgresStorage

    with PostgresStorage.open(dsn) as store:  # the feeds stored before the daemons start, none of them due
        store.sync_feeds(load_config(config).feed_specs(), datetime.now(UTC))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE feeds SET next_poll_at = now() + interval '1 day'")
        # Nothing due until the bench says so; stored items count as enriched (see the module's docstring).
        conn.execute("CREATE FUNCTION bench_enriched() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$ BEGIN NEW.enriched := TRUE; RETURN NEW; END $$")  # fmt: skip
        conn.execute(
            "CREATE TRIGGER bench_enriched BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION bench_enriched()"
        )
        daemons = [Daemon(config, work / f"instance-{instances}-{n}.log") for n in range(instances)]
        try:
            for daemon in daemons:
                daemon.wait_started()
            time.sleep(3)  # the spaCy model loaded, the first ticks run
            figures: dict[str, object] = {}
            figures["first"], figures["first_shares"] = cycle(conn, daemons, feeds)
            figures["second"], figures["second_shares"] = cycle(conn, daemons, feeds)
            if instances >= 2:
                figures.update(kill_one(conn, daemons, feeds))
            return figures
        finally:
            for daemon in daemons:
                daemon.stop()


def kill_one(conn: psycopg.Connection, daemons: list[Daemon], feeds: int) -> dict[str, object]:
    """Every feed due; one instance killed mid-cycle: how long until each feed it held was polled by another."""
    victim = daemons[0]
    started = make_due(conn)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        held = conn.execute("SELECT count(*) FROM feeds WHERE leased_by = %s AND leased_until > now()",
                            [victim.instance]).fetchone()[0]  # fmt: skip
        if held >= 8:
            break
        time.sleep(0.02)
    victim.process.kill()
    killed = datetime.now(UTC)
    victim.process.wait()
    held_ids = [row[0] for row in conn.execute(
        "SELECT id FROM feeds WHERE leased_by = %s AND (last_polled_at IS NULL OR last_polled_at < %s)",
        [victim.instance, started],
    )]  # fmt: skip
    wait_polled(conn, started, feeds)
    times = [
        (row[0] - killed).total_seconds()
        for row in conn.execute("SELECT last_polled_at FROM feeds WHERE id = ANY(%s)", [held_ids])
    ]
    return {
        "killed_held": len(held_ids),
        "repoll_first": min(times, default=0.0),
        "repoll_last": max(times, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--instances", default="1,2,3")
    parser.add_argument("--latency", default="0.05-0.25", help="seconds, uniform between two bounds")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="a directory to keep the daemons' logs in")
    args = parser.parse_args()
    low, high = (float(x) for x in args.latency.split("-"))
    counts = [int(n) for n in args.instances.split(",")]

    context = multiprocessing.get_context("spawn")
    answers: multiprocessing.Queue[tuple[int, int]] = context.Queue()
    server_process = context.Process(target=serve, args=(args.feeds, low, high, answers), daemon=True)
    server_process.start()
    port, _ = answers.get(timeout=120)
    print(f"{args.feeds} feeds, latency {low * 1000:.0f}-{high * 1000:.0f} ms, concurrency 32 per instance, "
          f"lease {2 * (TIMEOUT_S + PARSE_TIMEOUT_S)} s; {os.cpu_count()} CPUs")  # fmt: skip
    try:
        for run in range(args.runs):
            for instances in counts:
                with tempfile.TemporaryDirectory() as tmp:
                    work = args.keep / f"run-{run + 1}" if args.keep else Path(tmp)
                    work.mkdir(parents=True, exist_ok=True)
                    figures = run_one(port, args.feeds, instances, work)
                line = (
                    f"run {run + 1}  {instances} instance(s): first cycle {figures['first']:6.2f} s "
                    f"({args.feeds / figures['first']:6.1f} feeds/s, polls {figures['first_shares']})  "
                    f"304 cycle {figures['second']:5.2f} s ({args.feeds / figures['second']:6.1f} feeds/s, "
                    f"polls {figures['second_shares']})"
                )
                if "killed_held" in figures:
                    line += (
                        f"  kill -9: {figures['killed_held']} feeds held, re-polled by another "
                        f"{figures['repoll_first']:.1f}-{figures['repoll_last']:.1f} s after the kill"
                    )
                print(line, flush=True)
    finally:
        server_process.terminate()
        server = postgres_server()
        server.stop()


if __name__ == "__main__":
    main()
