"""Where recalled blocks went: a turn's hash is the same in every process, and a shared
store that fails or is slow costs a request its blocks only, counted, and logged once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import memory_proxy
from memory_proxy.memory.placed_blocks import Placed, SharedBlocks, text_hash
from memory_proxy.records.memory import MemoryRecord, PlacedBlock
from memory_proxy.stores.base import StoreOperation

SOURCE = Path(memory_proxy.__file__).parents[1]  # this checkout's, whatever the directory


def test_a_turns_hash_is_the_same_in_another_process() -> None:
    code = "from memory_proxy.memory.placed_blocks import text_hash; print(text_hash('hi \\udc80'))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "random", "PYTHONPATH": str(SOURCE)},
    )
    assert other.stdout.strip() == text_hash("hi \udc80")


class BrokenPlacements:
    def __init__(self, error: BaseException | None = None, delay: float = 0.0) -> None:
        self.error, self.delay = error, delay

    async def placed(
        self, user_id: str, session_id: str
    ) -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
        await asyncio.sleep(self.delay)
        if self.error:
            raise self.error
        return []

    async def place(self, user_id: str, session_id: str, block: PlacedBlock, now: float) -> None:
        raise OSError("disk full")

    async def drop(self, user_id: str, session_id: str, turns: list[int]) -> None:
        raise OSError("disk full")

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize(
    "store", [BrokenPlacements(OSError("no route to host")), BrokenPlacements(delay=5)]
)
def test_a_failing_or_slow_store_costs_only_the_blocks(
    store: BrokenPlacements, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[StoreOperation] = []

    async def main() -> None:
        shared = SharedBlocks(store, 0.05, failures.append)
        assert await shared.blocks(("alice", "s1")) == {}
        shared.change(("alice", "s1"), [1], {2: Placed("h", "block")})
        await shared.aclose()  # the write under way finished first

    asyncio.run(main())
    assert failures == ["placements_read", "placements_write"]  # both counted, apart
    # one line logged (ThrottledFailures)
    assert caplog.text.count("the recalled blocks placed failed") == 1
