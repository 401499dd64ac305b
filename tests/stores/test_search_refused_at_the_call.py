"""A search an index (SQLite or PostgreSQL) has no room for is refused when it is asked
for, before anything is awaited, and recall asks before it sets its timer: under load nine
questions in ten are refused, and each paid for a coroutine and a timer it never used, and
on PostgreSQL for the question's stems and the statement (issue 19)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.recall import Recall
from memory_proxy.stores.base import MemoryIndex, SearchBusy
from memory_proxy.stores.search_admission import MAX_WAITING, for_recall
from tests.memory.recall_support import WordIndex, block_in_new_session
from tests.stores.sqlite_index_support import LOADED_MACHINE, Index, memory


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_search_an_index_has_no_room_for_is_refused_at_the_call(
    store: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    where: Path | str = tmp_path / "memory.sqlite3"
    if store == "postgres":
        where = request.getfixturevalue("postgres_url")
    # A budget no search comes near: refused by how many wait alone, whatever the machine.
    index = Index(where, search_budget=LOADED_MACHINE)
    try:
        index(_a_search_an_index_has_no_room_for_is_refused_at_the_call)
    finally:
        index.close()


async def _a_search_an_index_has_no_room_for_is_refused_at_the_call(index: MemoryIndex) -> None:
    await index.add([memory("the staging database listens on port 5433")])
    with for_recall():
        taken = [index.search("alice", "shop", "staging port", limit=5) for _ in range(MAX_WAITING)]
        with pytest.raises(SearchBusy):
            index.search("alice", "shop", "database port", limit=5)  # nothing to await
    assert all(await asyncio.gather(*taken))  # each taken one answered
    assert await index.search("alice", "shop", "staging port", limit=5)  # room again
    assert await index.search("alice", "shop", "the and of", limit=5) == []  # no topic


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
