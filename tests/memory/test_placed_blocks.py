"""Where recalled blocks went: a turn's hash is the same in every process, and a shared
store that fails or is slow costs a request its blocks only, counted, and logged once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import memory_proxy
from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.placed_blocks import Placed, SharedBlocks, text_hash
from memory_proxy.memory.question import last_human_turn
from memory_proxy.memory.recall import Recall, RecallOutcome
from memory_proxy.records.memory import MemoryRecord, PlacedBlock, memory_id
from memory_proxy.stores.base import StoreOperation
from memory_proxy.wire.registry import CHAT
from tests.memory.recall_support import WordIndex

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


def test_blocks_placed_in_this_process_are_read_with_no_task() -> None:
    """Recall reads the blocks placed in a conversation beside its search: in this process
    that read is done at once, so a question costs no task and no turn of the event loop
    for it (issue 19); the block is put back as before."""
    text = "User: how do we deploy the service?\nAssistant: with the deploy.sh script"
    index = WordIndex()
    record = MemoryRecord(memory_id("alice", "r", text), "alice", "r", "old", "c", "m", 0.0, text)
    asyncio.run(index.add([record]))
    recall = Recall(index, RecallSettings(), on_timeout=print, on_failure=print)
    question = "How do we deploy the service?"

    async def applied(*texts: str) -> tuple[RecallOutcome, int]:
        roles = ("user", "assistant")
        body = {"messages": [{"role": roles[i % 2], "content": t} for i, t in enumerate(texts)]}
        tasks: list[object] = []

        def counted(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            tasks.append(coro)
            return asyncio.Task(coro, loop=loop, **kwargs)

        asyncio.get_running_loop().set_task_factory(counted)
        turn = last_human_turn(CHAT, body)
        outcome = await recall.apply(
            CHAT, body, body, turn, user_id="alice", project="r", session_id="s1",
            history_injected=False,
        )  # fmt: skip
        return outcome, len(tasks)

    first, tasks = asyncio.run(applied(question))
    assert (first.recalled, tasks) == (1, 0)
    later, tasks = asyncio.run(applied(question, "with deploy.sh", "and the VM's name?"))
    assert tasks == 0  # the first turn's block read, no task made for it
    assert later.body is not None
    assert "deploy.sh script" in later.body["messages"][0]["content"]
