"""Calls to a store's thread made while it is busy, handed to it together: one hop to the
thread and one wake-up of the event loop for all of them, instead of one each.

Under load the session store is called twice per request (its history, then the exchange
to keep); each hop costs a queue put, a thread wake-up and a `call_soon_threadsafe` that
wakes the loop, and the thread's Python takes the GIL from the loop each time. Calls
queued together also let the store do their work together (one query for many histories,
one transaction for many appends).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

Call = TypeVar("Call")

# What a batch's calls came to, in their order: each one's result, or the exception it
# raised (an exception is never a result).
Outcomes = Sequence[Any]
_Settled = tuple[list["asyncio.Future[Any]"], Outcomes]  # a job's futures and outcomes


class BatchedCalls(Generic[Call]):
    """`call(item)` queues `item`; the first call of a batch has one job submitted (once
    the loop has run what is ready) that takes every item queued when it starts and
    runs `run_batch` on them, in order, on the thread; one callback on the loop settles
    their futures. `submit(job)` hands a job to the thread and returns its future."""

    def __init__(
        self,
        submit: Callable[[Callable[[], _Settled]], asyncio.Future[_Settled]],
        run_batch: Callable[[list[Call]], Outcomes],
    ) -> None:
        self._submit = submit
        self._run_batch = run_batch
        self._lock = threading.Lock()  # the loop queues while the thread takes
        self._queued: list[tuple[Call, asyncio.Future[Any], bool]] = []

    def call(self, item: Call, *, skip_if_abandoned: bool = False) -> asyncio.Future[Any]:
        """The future of `item`'s result. With `skip_if_abandoned`, an item whose caller
        stopped waiting (its future cancelled) before the thread got to it is not run
        (a history nobody waits for any more); otherwise it is run anyway (a write).

        The batch's job is submitted once the loop has run what is ready now, so that
        every call made meanwhile (the requests read in one pass of the loop) joins it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queued.append((item, future, skip_if_abandoned))
            first = len(self._queued) == 1
        if first:
            loop.call_soon(self._submit_queued)
        return future

    def _submit_queued(self) -> None:
        try:
            job = self._submit(self._run_queued)
        except Exception as exc:  # the thread is stopped: the store was closed
            with self._lock:
                batch, self._queued = self._queued, []
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        job.add_done_callback(_settle)

    def _run_queued(self) -> _Settled:
        """On the thread: the items queued so far, less the abandoned ones, run; with
        the futures their outcomes settle. A batch that fails as a whole fails each."""
        with self._lock:
            batch, self._queued = self._queued, []
        wanted = [(item, future) for item, future, skip in batch if not (skip and future.done())]
        futures = [future for _, future in wanted]
        try:
            outcomes = self._run_batch([item for item, _ in wanted])
        except Exception as exc:
            outcomes = [exc] * len(wanted)
        return futures, outcomes


def _settle(job: asyncio.Future[_Settled]) -> None:
    """On the loop: each waiting caller gets its result or exception."""
    if job.cancelled() or job.exception() is not None:
        return  # never: the job catches what its batch raises
    futures, outcomes = job.result()
    for future, outcome in zip(futures, outcomes, strict=True):
        if future.done():
            continue  # its caller stopped waiting
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
