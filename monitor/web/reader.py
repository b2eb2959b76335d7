"""Store reads for the dashboard, off the event loop: threads of their own, each with its own connection.

Pages read in one thread, the rule tester (seconds of work on a long
history) in another, so a slow page or a long rule test never delays polling
or delivery on the daemon's loop, nor each other. Each thread opens its own
connection to the database on first use and closes it when the reader closes.
The rule tester keeps only the newest request of each client waiting: one
superseded by a newer keystroke is dropped before it starts.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from monitor.store import Storage, open_storage

T = TypeVar("T")


class Superseded(Exception):
    """Work dropped before it started: a newer rule test from the same client came in, or the reader closes."""


class _Lane:
    """One thread and the connection it owns."""

    def __init__(self, database: Path | str, name: str):
        self.database = database
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self.store: Storage | None = None
        self.closing = False

    def call(self, work: Callable[[Storage], T]) -> T:
        if self.closing:
            raise Superseded
        if self.store is None:
            self.store = open_storage(self.database)
        return work(self.store)

    def close(self) -> None:
        def close_store() -> None:
            if self.store is not None:
                self.store.close()
                self.store = None

        self.closing = True  # work still queued ends at once
        self.pool.submit(close_store)
        self.pool.shutdown(wait=True)


class Reader:
    def __init__(self, database: Path | str):
        self._pages = _Lane(database, "web-pages")
        self._tests = _Lane(database, "web-rule-test")
        self._newest: dict[str, int] = {}
        self._lock = threading.Lock()
        self._counter = 0

    async def read(self, work: Callable[[Storage], T]) -> T:
        """Run ``work(store)`` in the pages' thread."""
        lane = self._pages
        return await asyncio.get_running_loop().run_in_executor(lane.pool, lane.call, work)

    async def rule_test(self, client: str, work: Callable[[Storage], T]) -> T:
        """Run ``work(store)`` in the rule tester's thread, unless a newer test of ``client`` comes first."""
        with self._lock:
            self._counter += 1
            ticket = self._counter
            self._newest[client] = ticket
            if len(self._newest) > 1000:  # clients come and go; forget the oldest
                for stale in list(self._newest)[:500]:
                    self._newest.pop(stale, None)
        lane = self._tests

        def run(store: Storage) -> T:
            with self._lock:
                if self._newest.get(client, ticket) != ticket:
                    raise Superseded
            return work(store)

        return await asyncio.get_running_loop().run_in_executor(lane.pool, lane.call, run)

    async def aclose(self) -> None:
        """Close both connections, after the work running now (in a thread: the loop does not wait)."""
        await asyncio.to_thread(self._pages.close)
        await asyncio.to_thread(self._tests.close)
