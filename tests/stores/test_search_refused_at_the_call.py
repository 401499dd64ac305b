"""A search the SQLite index cannot answer in time is refused when it is asked for, before
anything is awaited, and recall asks before it sets its timer: under load nine questions in
ten are refused, and each paid for a coroutine and a timer it never used (issue 19)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.recall import Recall
from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.search_admission import for_recall
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.memory.recall_support import WordIndex, block_in_new_session
from tests.stores.sqlite_index_support import memory


def test_a_search_the_index_cannot_answer_in_time_is_refused_at_the_call(tmp_path: Path) -> None:
    asyncio.run(_a_search_the_index_cannot_answer_in_time_is_refused_at_the_call(tmp_path))


async def _a_search_the_index_cannot_answer_in_time_is_refused_at_the_call(
    tmp_path: Path,
) -> None:
    index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3", search_budget=1e-9)
    try:
        await index.add([memory("the staging database listens on port 5433")])
        assert await index.search("alice", "shop", "staging port", limit=5)  # the time learnt
        with for_recall():
            first = index.search("alice", "shop", "staging port", limit=5)  # idle: taken
            with pytest.raises(SearchBusy):
                index.search("alice", "shop", "database port", limit=5)  # nothing to await
        assert await first
        assert await index.search("alice", "shop", "the and of", limit=5) == []  # no topic
    finally:
        await index.aclose()


@dataclasses.dataclass
class RefusingIndex(WordIndex):
    """Refuses every search when it is asked for, as the SQLite index does when busy."""

    def search(self, *args: object, **kwargs: object) -> Any:
        raise SearchBusy("the memory index is busy: 64 searches waiting")


def test_recall_asks_a_busy_index_before_it_sets_a_timer() -> None:
    busy: list[int] = []
    recall = Recall(
        RefusingIndex(),
        RecallSettings(),
        on_timeout=lambda: None,
        on_failure=lambda: None,
        on_busy=lambda: busy.append(1),
    )

    async def applied() -> tuple[str, list[float]]:
        loop = asyncio.get_running_loop()
        timers: list[float] = []
        call_at = loop.call_at

        def counted(when: float, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
            timers.append(when)
            return call_at(when, *args, **kwargs)

        loop.call_at = counted  # type: ignore[method-assign,assignment]
        return await block_in_new_session(recall, "How do we deploy the service?"), timers

    block, timers = asyncio.run(applied())
    assert (block, busy) == ("", [1])  # asked, refused, nothing put in, counted
    assert timers == []
