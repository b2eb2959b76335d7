"""One lane per channel: its sends go one at a time, each cut off by a timeout we enforce.

A send blocks (apprise, the network, apprise's own pacing), so it runs in a thread of its
own, a daemon thread, while the event loop waits at most ``timeout`` seconds for it. A
thread cannot be killed: a send that overruns is *abandoned*. The caller gets a failed
result at once ("timed out after 30s"), its alert is retried with the usual backoff, and the
thread runs on until the receiver or the socket gives up. While such a thread is still
running the lane sends nothing more on that channel (each further send fails at once, saying
why) so a receiver that trickles or never answers holds at most one thread, delays only its
own channel, and never the process's exit (daemon threads are not waited for).

At-least-once: an abandoned send may still reach its receiver after we gave up on it, and
the alert is sent again on its retry, so that receiver may see it twice. The alternative,
counting a send we never saw finish as done, could lose an alert.

The lane is also where the delivery worker keeps its task for the channel (``task``) and
whether new alerts came due while it was busy (``again``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from monitor.alerts.channels import SendResult
from monitor.alerts.render import Message

__all__ = ["Lane"]


class Lane:
    """The sends of one channel: at most one at a time, each within a timeout."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.task: asyncio.Task[Any] | None = None  # the delivery worker's task for this channel
        self.again = False  # alerts came due while the task ran: it looks once more before it ends
        self._abandoned: list[tuple[threading.Thread, float]] = []  # (thread, monotonic start)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def stuck_for(self) -> float | None:
        """Seconds since the oldest abandoned send still running began; None when none is."""
        self._abandoned = [(thread, began) for thread, began in self._abandoned if thread.is_alive()]
        if not self._abandoned:
            return None
        return time.monotonic() - min(began for _, began in self._abandoned)

    async def send(self, send: Callable[[Message], SendResult], message: Message, timeout: float) -> SendResult:
        """``send(message)`` in a thread, waited for at most ``timeout`` seconds; never raises but CancelledError.

        Cancelled (the service stops), the send is abandoned like one that timed out.
        """
        stuck = self.stuck_for()
        if stuck is not None:
            return SendResult(
                False,
                f"not sent: an earlier send to this channel timed out and is still running after {stuck:.0f}s "
                "(the receiver does not answer)",
            )
        loop = asyncio.get_running_loop()
        done: asyncio.Future[SendResult] = loop.create_future()

        def run() -> None:
            try:
                result = send(message)
            except BaseException as error:  # a sender should not raise; keep the reason if it does
                result = SendResult(False, f"{type(error).__name__}: {error}")
            try:
                loop.call_soon_threadsafe(_resolve, done, result)
            except RuntimeError:  # the event loop is closed: nobody is waiting any more
                pass

        thread = threading.Thread(target=run, name=f"send:{self.name}", daemon=True)
        began = time.monotonic()
        thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), timeout)
        except TimeoutError:
            self._abandoned.append((thread, began))
            return SendResult(False, f"the send timed out after {timeout:g}s (delivery.send_timeout)")
        except asyncio.CancelledError:
            if thread.is_alive():
                self._abandoned.append((thread, began))
            raise


def _resolve(future: asyncio.Future[SendResult], result: SendResult) -> None:
    if not future.done():
        future.set_result(result)
