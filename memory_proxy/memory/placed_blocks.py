"""Which recalled block went into which user turn of a conversation, so that its later
requests, which resend that turn without it, get the very same block back (recall.py):
the prefix the provider cached stays byte for byte the same.

In one process (`store: memory`, or a recall backend other than the local index) a small
LRU remembers the blocks themselves. On a store that several processes share (the SQLite
file under `--workers`, PostgreSQL under several proxies) the next request may reach
another process, so the store keeps what makes each block again: its memories' ids in the
order offered, its tag's suffix and the size allowed (never the text: a memory forgotten
takes every block quoting it along, and that block is not put back). A turn is known by a
stable hash of its text (Python's own `hash` differs from process to process).

A shared store that fails or is slow costs a request nothing but its blocks: reads wait
at most recall's budget, writes run after the request has gone on; failures are counted
and logged by recall.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from memory_proxy.logging_setup import ThrottledFailures
from memory_proxy.memory.recall_block import recalled_block
from memory_proxy.records.memory import PlacedBlock, Recalled
from memory_proxy.stores.base import Placements, StoreOperation

logger = logging.getLogger("memory_proxy.memory")

MAX_CONVERSATIONS = 2048  # conversations whose placed blocks one process remembers
MAX_BLOCKS_PER_CONVERSATION = 32
Conversation = tuple[str, str]  # (user id, session id or "" when the client names none)


def text_hash(text: str) -> str:
    """The same in every process, unlike `hash`."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


@dataclass(frozen=True)
class Placed:
    """A block put into the user turn whose human text hashed to `text_hash`; `private`:
    it holds a private model's memory. `suffix`, `max_chars` and `memory_ids` make it
    again (recalled_block)."""

    text_hash: str
    block: str
    private: bool = False
    suffix: str = ""
    max_chars: int = 0
    memory_ids: tuple[str, ...] = ()


class ConversationBlocks(Protocol):
    def blocks(self, conversation: Conversation) -> Awaitable[dict[int, Placed]]:
        """The blocks by turn index (-1: the system prompt's)."""
        ...

    def change(
        self, conversation: Conversation, dropped: list[int], placed: dict[int, Placed]
    ) -> None:
        """The turns `dropped` forgotten, then `placed` remembered."""
        ...

    async def aclose(self) -> None: ...


class LocalBlocks:
    """In this process: the blocks themselves, in an LRU of conversations."""

    def __init__(self) -> None:
        self._placed: collections.OrderedDict[Conversation, dict[int, Placed]] = (
            collections.OrderedDict()
        )

    def blocks(self, conversation: Conversation) -> asyncio.Future[dict[int, Placed]]:
        """Read at once, as a future already done: recall reads beside its search, and a
        coroutine would have cost it a task and a turn of the event loop per question."""
        read = asyncio.get_running_loop().create_future()
        read.set_result(dict(self._placed.get(conversation, {})))
        return read

    def change(
        self, conversation: Conversation, dropped: list[int], placed: dict[int, Placed]
    ) -> None:
        blocks = self._placed.setdefault(conversation, {})
        for index in dropped:
            blocks.pop(index, None)
        blocks.update(placed)
        while len(blocks) > MAX_BLOCKS_PER_CONVERSATION:
            del blocks[min(blocks)]
        self._placed.move_to_end(conversation)
        while len(self._placed) > MAX_CONVERSATIONS:
            self._placed.popitem(last=False)

    async def aclose(self) -> None:
        return None


class SharedBlocks:
    """In a store every process shares (`placements`), read within `budget` seconds (the
    recall's); `on_failure` counts a failed or late read or a failed write (by its
    operation), logged too."""

    def __init__(
        self,
        placements: Placements,
        budget: float,
        on_failure: Callable[[StoreOperation], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._placements = placements
        self._budget = budget
        self._on_failure = on_failure
        self._clock = clock
        self._writes: set[asyncio.Task[None]] = set()
        self._log_failure = ThrottledFailures(logger)

    async def blocks(self, conversation: Conversation) -> dict[int, Placed]:
        try:
            async with asyncio.timeout(self._budget):
                rows = await self._placements.placed(*conversation)
        except Exception as exc:  # TimeoutError too
            self._failed("placements_read", "reading the recalled blocks placed failed", exc)
            return {}
        found: dict[int, Placed] = {}
        for block, records in rows:
            if not all(memory_id in records for memory_id in block.memory_ids):
                continue  # a memory forgotten since: the block goes with it
            hits = [Recalled(records[memory_id], 0.0) for memory_id in block.memory_ids]
            made = recalled_block(hits, block.max_chars, block.suffix)
            if made is not None:
                found[block.turn] = Placed(
                    block.text_hash,
                    made[0],
                    block.private,
                    block.suffix,
                    block.max_chars,
                    block.memory_ids,
                )
        return found

    def change(
        self, conversation: Conversation, dropped: list[int], placed: dict[int, Placed]
    ) -> None:
        """Written after the request has gone on, in order."""
        if dropped or placed:
            self._later(self._write(conversation, dropped, placed))

    async def _write(
        self, conversation: Conversation, dropped: list[int], placed: dict[int, Placed]
    ) -> None:
        try:
            if dropped:
                await self._placements.drop(*conversation, dropped)
            now = self._clock()
            for turn, p in placed.items():
                block = PlacedBlock(
                    turn, p.text_hash, p.suffix, p.max_chars, p.private, p.memory_ids
                )
                await self._placements.place(*conversation, block, now)
        except Exception as exc:
            self._failed("placements_write", "keeping the recalled blocks placed failed", exc)

    def _later(self, write: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    def _failed(self, operation: StoreOperation, what: str, exc: Exception) -> None:
        self._on_failure(operation)
        self._log_failure(what, exc)

    async def aclose(self) -> None:
        """The writes under way finished, then the store closed."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._placements.aclose()
