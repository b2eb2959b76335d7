"""Feed parsing in processes of their own: several at once, each parse within a time budget.

feedparser is pure Python: in a thread it would hold the interpreter lock that
the event loop and the entity stage need. A spawned process imports only the
parser, not spaCy, and ends with the daemon even after a kill -9.

:data:`PROCESSES` processes parse at once, so a feed that takes long to parse
holds up one of them, not every other feed. A parse that exceeds its time
budget fails its feed, and its process is killed, reaped and replaced; parsing
keeps no state, so nothing else is lost. A process that dies (killed, out of
memory) fails the feed it was parsing and is replaced too.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import resource
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import timedelta
from functools import partial

from monitor.durations import format_duration
from monitor.errors import ParseError
from monitor.feeds.clean import MAX_TEXT_CHARS
from monitor.feeds.parse import ParsedFeed, parse_feed

__all__ = ["MEMORY_LIMIT", "PROCESSES", "ParserPool"]

log = logging.getLogger("monitor.parser_pool")

# Two: a slow feed leaves the other for everyone else, and a two-core machine
# runs both at full speed. Parsing a usual feed takes milliseconds, so two keep
# up with thousands of feeds.
PROCESSES = 2
# The address space a parser process may use: about ten times what parsing a
# 10 MB feed (poll.max_bytes) needs, and far below what a runaway expansion asks.
MEMORY_LIMIT = 1024 * 1024 * 1024


class ParserPool:
    """Parser processes, started when a parse first needs one (or all at once by :meth:`start`);
    a parse goes to the one used last that is free.

    Reusing the last one keeps the others idle and warm for when it is busy. A run that parses
    nothing (every feed answered 304 Not Modified) starts none.
    """

    def __init__(self, processes: int = PROCESSES) -> None:
        self._size = processes
        self._parent = os.getpid()
        self._idle: list[_Worker] = []
        self._workers: set[_Worker] = set()
        self._free: asyncio.Semaphore | None = None  # made in the event loop that uses it
        self._closed = False

    async def parse(
        self,
        content: bytes,
        url: str,
        content_type: str | None,
        *,
        timeout: float | None = None,
        max_text_chars: int = MAX_TEXT_CHARS,
    ) -> ParsedFeed:
        """:func:`parse_feed` in a parser process, failed with a ParseError after ``timeout`` seconds."""
        call = partial(parse_feed, content, url=url, content_type=content_type, max_text_chars=max_text_chars)
        worker: _Worker | None = await self._take()
        try:
            return await worker.run(call, timeout)
        except TimeoutError:
            worker = self._replace(worker)
            raise ParseError(f"{url}: parsing took longer than {_seconds(timeout)}; the parser was restarted") from None
        except BrokenProcessPool:
            worker = self._replace(worker)
            raise ParseError(f"{url}: the parser process died while parsing this feed; it was restarted") from None
        except asyncio.CancelledError:
            # The poll was cut short (the daemon is stopping): its process may still be parsing.
            worker = self._retire(worker)
            raise
        finally:
            self._give(worker)

    async def pid(self) -> int:
        """The process id of the parser process the next parse goes to (started again if it died)."""
        worker: _Worker | None = await self._take()
        try:
            try:
                return await worker.pid()
            except BrokenProcessPool:
                worker = self._replace(worker)
                if worker is None:
                    raise
                return await worker.pid()
        finally:
            self._give(worker)

    async def pids(self) -> list[int]:
        """The process ids of every parser process (started now, those not started yet)."""
        self.start()
        return [await worker.pid() for worker in list(self._workers)]

    def start(self) -> None:
        """Start every parser process not started yet, without waiting for them to be ready."""
        while not self._closed and len(self._workers) < self._size:
            worker = _Worker(self._parent)
            self._workers.add(worker)
            self._idle.insert(0, worker)  # behind the warm ones: those are used first

    def close(self) -> None:
        """Kill every parser process, busy or not, and reap them."""
        self._closed = True
        workers, self._workers, self._idle = list(self._workers), set(), []
        for worker in workers:
            worker.kill(reap=False)
        for worker in workers:  # each pool's own thread reaps its killed process before it ends
            worker.pool.shutdown(wait=True, cancel_futures=True)

    async def _take(self) -> _Worker:
        if self._free is None:
            self._free = asyncio.Semaphore(self._size)
        await self._free.acquire()
        if self._closed:
            self._free.release()
            raise ParseError("the parsers are stopped: the daemon is stopping")
        if not self._idle:  # none started yet, or one was retired: start one now that it is needed
            worker = _Worker(self._parent)
            self._workers.add(worker)
            return worker
        return self._idle.pop()

    def _give(self, worker: _Worker | None) -> None:
        if worker is not None and not self._closed:
            self._idle.append(worker)
        assert self._free is not None
        self._free.release()

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.discard(worker)

    def _replace(self, worker: _Worker) -> _Worker | None:
        self._retire(worker)
        if self._closed:
            return None
        successor = _Worker(self._parent)
        self._workers.add(successor)
        return successor


class _Worker:
    """One parser process: a process pool of one, and the process id it reported when it started."""

    def __init__(self, parent: int) -> None:
        self.pool = ProcessPoolExecutor(
            1, mp_context=multiprocessing.get_context("spawn"), initializer=_prepare, initargs=(parent,)
        )
        # The process starts now; this answers when it is ready.
        self.started: Future[int] = self.pool.submit(os.getpid)
        log.debug("parser.starting")

    async def run(self, call: partial[ParsedFeed], timeout: float | None) -> ParsedFeed:
        return await asyncio.wait_for(asyncio.wrap_future(self.pool.submit(call)), timeout)

    async def pid(self) -> int:
        return await asyncio.wrap_future(self.started)

    def kill(self, *, reap: bool = True) -> None:
        """End the process now, whatever it is doing; ``reap``: let the pool's own thread reap it.

        Without ``reap``, the caller shuts the pool down itself and waits.
        """
        pids = set(getattr(self.pool, "_processes", None) or ())  # one still starting has not reported yet
        if self.started.done() and not self.started.cancelled() and self.started.exception() is None:
            pids.add(self.started.result())
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if reap:
            self.pool.shutdown(wait=False, cancel_futures=True)


def _seconds(timeout: float | None) -> str:
    seconds = timeout or 0.0
    return f"{seconds:g} s" if seconds < 60 else format_duration(timedelta(seconds=seconds))


def _prepare(parent: int) -> None:
    """Runs in the parser process: bound its memory, and end it when the daemon is gone, even after a kill -9.

    A parse that needs more than :data:`MEMORY_LIMIT` gets a MemoryError (its
    feed fails with a reason) instead of pushing the machine into swap or its
    out-of-memory killer, which could pick the daemon. A worker left behind
    would wait for work forever; systemd would kill it with the unit, but a
    daemon run by hand has no one else to clean up. Ctrl-C reaches the whole
    process group: the daemon stops the parser itself, so the parser ignores
    SIGINT rather than print a traceback of its own.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > MEMORY_LIMIT:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, hard))

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-daemon", daemon=True).start()
