"""Long-term memory kept in bounds: memories older than `memory.retention_days` are
dropped, and the oldest ones while the file is over `memory.max_mb`. A background task on
a timer; each step is one small batch on the index's own thread, so that the index's
writes (new memories, forgets) go in between, and no request ever waits for it.

- Retention is looked at every RETENTION_CHECK_SECONDS: a memory a few minutes past its
  last day does no harm, and a round that drops any rewrites the index to erase them.
- Size is looked at every SIZE_CHECK_SECONDS (three PRAGMAs on the index's thread: about
  40 us with the hop, 0.02% of a core). Past HIGH_WATER of `max_mb`, the oldest memories
  are dropped until the file is under LOW_WATER of it: writes that arrive while a round
  runs stay under the cap, and the next round waits for a tenth of it to fill again. The
  bytes in use are the file's pages in use (sqlite_space.py); sessions and usage records
  take some of them (bounded by their own settings), so the first round drops as if the
  file held memories only, and the next ones by what a memory dropped really gave back
  (measured after each erase).
- A round that dropped any erases once (the index rewritten, the -wal emptied: what
  forgetting does), counted in `memory_proxy_pruned_total{what}` and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable

from memory_proxy.logging_setup import log_failure
from memory_proxy.stores.base import MemoryIndex

logger = logging.getLogger("memory_proxy.memory")

RETENTION_CHECK_SECONDS = 600.0
SIZE_CHECK_SECONDS = 0.25  # as often as new memories are written (batch_writer.py)
BATCH = 200  # memories forgotten in one transaction of the index
HIGH_WATER = 0.9  # of max_mb: where pruning for size starts, leaving room for writes meanwhile
LOW_WATER = 0.8  # of max_mb: where it stops
MAX_ROUNDS = 4  # of dropping and measuring again, per look
DAY_SECONDS = 86_400.0
OLD = "old_memories"
OVER_SIZE = "memories_over_max_mb"


class MemoryPruner:
    """Prunes `index` to `retention_days` and `max_mb` (either may be None: no bound);
    `on_pruned(what, count)` counts what went."""

    def __init__(
        self,
        index: MemoryIndex,
        retention_days: float | None,
        max_mb: float | None,
        on_pruned: Callable[[str, int], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._index = index
        self._retention = retention_days * DAY_SECONDS if retention_days else None
        self._max_bytes = max_mb * 2**20 if max_mb else None
        self._on_pruned = on_pruned
        self._clock = clock
        self._retention_due = 0.0  # monotonic time of the next look
        self._erase_pending = False
        self._said_nothing_left = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._retention is not None or self._max_bytes is not None:
            self._task = asyncio.ensure_future(self._prune_forever())

    async def prune(self) -> dict[str, int]:
        """One look: what was dropped, by kind."""
        dropped: dict[str, int] = {}
        if self._retention is not None and time.monotonic() >= self._retention_due:
            self._retention_due = time.monotonic() + RETENTION_CHECK_SECONDS
            dropped[OLD] = await self._drop_old(self._clock() - self._retention)
        if self._max_bytes is not None:
            dropped[OVER_SIZE] = await self._drop_over_size(self._max_bytes)
        dropped = {what: count for what, count in dropped.items() if count}
        if dropped or self._erase_pending:
            await self._erase()
        for what, count in dropped.items():
            self._on_pruned(what, count)
        if dropped:
            use = await self._index.use()
            logger.info(
                "pruned %s; the file now uses %.1f MB for %d memories",
                ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in dropped.items()),
                use.used_bytes / 2**20,
                use.memories,
            )
        return dropped

    async def _drop_old(self, before: float) -> int:
        return await _in_batches(lambda n: self._index.forget_older_than(before, n), math.inf)

    async def _drop_over_size(self, max_bytes: float) -> int:
        if await self._index.used_bytes() <= max_bytes * HIGH_WATER:
            self._said_nothing_left = False
            return 0
        use = await self._index.use()
        target = max_bytes * LOW_WATER
        dropped = 0
        per_memory = use.used_bytes / max(use.memories, 1)  # at most: not all are memories
        for _ in range(MAX_ROUNDS):
            if not use.memories:
                self._say_nothing_left(use.used_bytes, max_bytes)
                break
            count = math.ceil((use.used_bytes - target) / per_memory)
            forgotten = await _in_batches(self._index.forget_oldest, count)
            await self._erase()
            before, use = use, await self._index.use()
            dropped += forgotten
            if use.used_bytes <= target or not forgotten:
                break
            # What one memory really took, for the next round.
            per_memory = max((before.used_bytes - use.used_bytes) / forgotten, 1.0)
        return dropped

    async def _erase(self) -> None:
        self._erase_pending = not await self._index.erase()

    def _say_nothing_left(self, used: int, max_bytes: float) -> None:
        if not self._said_nothing_left:
            self._said_nothing_left = True
            logger.warning(
                "the memory file uses %.1f MB, over memory.max_mb (%.1f), with no long-term "
                "memory left to drop: sessions and usage records take the rest (see "
                "memory.max_session_messages, memory.ttl_seconds, usage.max_records)",
                used / 2**20,
                max_bytes / 2**20,
            )

    async def _prune_forever(self) -> None:
        interval = SIZE_CHECK_SECONDS if self._max_bytes is not None else RETENTION_CHECK_SECONDS
        while True:
            try:
                await self.prune()
            except Exception as exc:
                log_failure(logger, "pruning long-term memory failed; trying again later", exc)
            await asyncio.sleep(interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def _in_batches(forget: Callable[[int], Awaitable[int]], count: float) -> int:
    """`forget(n)` called with at most BATCH until `count` went or nothing is left."""
    dropped = 0
    while dropped < count:
        batch = int(min(BATCH, count - dropped))
        forgotten = await forget(batch)
        dropped += forgotten
        if forgotten < batch:
            break
    return dropped
