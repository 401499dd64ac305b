"""The wait for a session's history, bounded by one timer for every load in flight rather
than a timer each.

`asyncio.timeout` arms and cancels a timer per wait: ~28k instructions a load on the
event loop under uvloop (callgrind), as much as the load's whole hand-off to the store's
thread and back. Every wait here lasts as long, so their deadlines come in the order the
loads were asked for: one timer, set for the oldest wait still running, ends the waits
past their deadline by cancelling what they await (a store's queued load that nobody waits
for any more is then not run: stores/batched_calls.py), and each such waiter hears
TimeoutError, as from `asyncio.timeout`.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class HistoryWaits:
    """Loads awaited for at most `seconds` each."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._waits: collections.deque[tuple[float, asyncio.Future[Any]]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the timer's

    async def load(self, loading: Awaitable[T]) -> T:
        """`loading`'s result, or TimeoutError once it took `seconds` (it is cancelled
        then). The caller cancelled meanwhile: the load is cancelled too, as with
        `asyncio.timeout`, and the caller hears CancelledError."""
        future = asyncio.ensure_future(loading)  # a store's own future stays as it is
        loop = future.get_loop()
        if loop is not self._loop:  # a loop of its own (a proxy served again, a test's)
            self._waits, self._timer, self._loop = collections.deque(), None, loop
        waits = self._waits
        while waits and waits[0][1].done():  # answered: no timer needed for them
            waits.popleft()
        waits.append((loop.time() + self.seconds, future))
        if self._timer is None:
            self._timer = loop.call_at(waits[0][0], self._expire, loop)
        try:
            return await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                raise TimeoutError(f"no history within {self.seconds:g} s") from None
            raise  # the caller's own cancellation

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        """The waits past their deadline ended; the timer set again for the oldest left."""
        now, waits = loop.time(), self._waits
        while waits and (waits[0][0] <= now or waits[0][1].done()):
            waits.popleft()[1].cancel()  # nothing for a load already answered
        self._timer = loop.call_at(waits[0][0], self._expire, loop) if waits else None
