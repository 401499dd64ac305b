"""Writing records off the request path: the request pays a queue put, a background task
writes them in batches, one transaction each (thousands under load, a few when quiet). A
failing store loses records, never a request; every lost record is counted and logged,
at most once a minute. Usage records and long-term memories are written this way."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")

QUEUE_LIMIT = 10_000  # records waiting to be written; past this they are dropped, counted
BATCH_SIZE = 2000
BATCH_LINGER_SECONDS = 0.25  # the longest a record waits for its batch to fill
SHUTDOWN_WRITE_SECONDS = 5.0
DROP_REPORT_SECONDS = 60.0


class BatchWriter(Generic[T]):
    """`write` stores one batch in `store` (named in the log, as `record` names one item
    and `plural` several)."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[None]],
        record: str,
        store: str,
        logger: logging.Logger,
        on_drop: Callable[[int], None] = lambda count: None,
        report_every: float = DROP_REPORT_SECONDS,
        plural: str | None = None,
    ) -> None:
        self._write_batch = write
        self._store = store
        self._logger = logger
        self._losses = LossLog(record, logger, on_drop, report_every, plural)
        self._queue: asyncio.Queue[T] = asyncio.Queue(QUEUE_LIMIT)
        self._batch_ready = asyncio.Event()
        self._closing = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def dropped(self) -> int:
        return self._losses.dropped

    def put(self, item: T) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._losses.lose(1, "the write queue was full")
            return
        if self._queue.qsize() >= BATCH_SIZE:
            self._batch_ready.set()

    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write_forever())

    async def written(self, within: float = SHUTDOWN_WRITE_SECONDS) -> None:
        """Returns once every item queued so far is written (or `within` passed)."""
        if self._writer is not None:
            self._batch_ready.set()  # no lingering for a full batch
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), within)

    async def _write_forever(self) -> None:
        while True:
            batch = [await self._queue.get()]
            # A batch is written when full, or once the first record has waited a while:
            # under load one transaction carries thousands, when quiet a few.
            if self._queue.qsize() < BATCH_SIZE and not self._closing:
                self._batch_ready.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(BATCH_LINGER_SECONDS):
                        await self._batch_ready.wait()
            while len(batch) < BATCH_SIZE and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._write(batch)
            for _ in batch:
                self._queue.task_done()

    async def _write(self, batch: list[T]) -> None:
        try:
            await self._write_batch(batch)
        except Exception as exc:
            self._losses.lose(len(batch), f"{self._store} failed: {str(exc) or type(exc).__name__}")
            self._logger.debug("%s failed: traceback", self._store, exc_info=exc)

    async def aclose(self) -> None:
        """Write what is queued (for a few seconds at most); the store stays open."""
        self._closing = True
        self._batch_ready.set()  # no more waiting for a full batch
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), SHUTDOWN_WRITE_SECONDS)
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if not self._queue.empty():
            self._losses.lose(self._queue.qsize(), "the proxy stopped before they were written")
        self._losses.close()


class LossLog:
    """Records lost (`record` names one, `plural` several), counted at once and logged at
    most once every `report_every` seconds: a full queue under load must not flood the
    log."""

    def __init__(
        self,
        record: str,
        logger: logging.Logger,
        on_drop: Callable[[int], None] = lambda count: None,
        report_every: float = DROP_REPORT_SECONDS,
        plural: str | None = None,
    ) -> None:
        self._record = record
        self._plural = plural or f"{record}s"
        self._logger = logger
        self._on_drop = on_drop
        self._report_every = report_every
        self.dropped = 0
        self._unreported: collections.Counter[str] = collections.Counter()
        self._report_timer: asyncio.TimerHandle | None = None
        self._closed = False

    def lose(self, count: int, reason: str) -> None:
        self.dropped += count
        self._on_drop(count)
        self._unreported[reason] += count
        if self._report_timer is None:
            self._report(first=True)

    def _report(self, first: bool = False) -> None:
        """Logs the records lost since the last report, then holds the next one back."""
        self._report_timer = None
        if not self._unreported:
            return
        total = sum(self._unreported.values())
        reasons = "; ".join(
            reason if count == total else f"{count}: {reason}"
            for reason, count in self._unreported.items()
        )
        self._logger.warning(
            "%d %s lost (%s)%s",
            total,
            self._record if total == 1 else self._plural,
            reasons,
            "; more are reported once a minute" if first else "",
        )
        self._unreported.clear()
        if not self._closed:
            loop = asyncio.get_running_loop()
            self._report_timer = loop.call_later(self._report_every, self._report)

    def close(self) -> None:
        """The losses not reported yet, logged now; no more timers."""
        self._closed = True
        if self._report_timer is not None:
            self._report_timer.cancel()
        self._report()
