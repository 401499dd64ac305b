"""One thread that runs blocking calls for the event loop, one at a time, in order.

What `loop.run_in_executor` on a one-thread `ThreadPoolExecutor` does, for less: no
`concurrent.futures.Future` (a Condition and its lock per call) chained to an asyncio
future, no idle-semaphore bookkeeping. The session store hops to its thread twice per
request, and this halves the Python side of each hop (scripts/bench: ~55 → ~35 µs of CPU).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class WorkerThread:
    """Calls run on one daemon thread in the order they were submitted."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def run(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """`work()`'s result (or exception), awaited on the running loop. Cancelling the
        wait does not stop `work` once the thread has it, as with run_in_executor."""
        if self._closed:
            raise RuntimeError("cannot run work after the thread is stopped")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, work))
        return future

    def stop(self) -> None:
        """Run what is queued, then end the thread (and wait for it)."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
        self._thread.join()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, work = job
            try:
                result = work()
            except BaseException as exc:
                settle_soon(loop, future, None, exc)
            else:
                settle_soon(loop, future, result, None)


def settle_soon(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: Any,
    exc: BaseException | None,
) -> None:
    """From a worker thread: `future` gets `result` (or `exc`) on its loop, unless its
    waiter has stopped waiting."""
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, future, result, exc)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    if future.cancelled():
        return  # the caller stopped waiting (a timeout)
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
