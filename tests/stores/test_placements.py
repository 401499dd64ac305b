"""Where recalled blocks went, in the SQLite file and in PostgreSQL alike: each turn's
block replaced or dropped, the memories it names read back as long as they are stored,
a conversation's latest blocks kept, and blocks older than a day dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.records.memory import PlacedBlock
from memory_proxy.stores.base import Placements
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from memory_proxy.stores.postgres_placements import PostgresPlacements
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_placements import KEEP_SECONDS, PER_CONVERSATION, SQLitePlacements
from tests.stores.sqlite_index_support import memory

Scenario = Callable[[Placements, Any], Coroutine[Any, Any, None]]
FACT, OTHER = memory("the port is 5433"), memory("the host is db1", at=2_000.0)


def block(turn: int, *ids: str, suffix: str = "5eed") -> PlacedBlock:
    return PlacedBlock(turn, f"hash-{turn}", suffix, 4000, False, ids)


@pytest.fixture(params=["sqlite", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[Scenario], None]:
    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            if request.param == "sqlite":
                index: Any = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
                placements: Placements = SQLitePlacements(tmp_path / "memory.sqlite3")
            else:
                url = request.getfixturevalue("postgres_url")
                index, placements = PostgresMemoryIndex(url), PostgresPlacements(url, 1.0)
            try:
                await index.add([FACT, OTHER])
                await scenario(placements, index)
            finally:
                await placements.aclose()
                await index.aclose()

        asyncio.run(main())

    return runner


def test_blocks_are_placed_replaced_dropped_and_read_with_their_memories(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(placements: Placements, index: Any) -> None:
        await placements.place("alice", "s1", block(0, FACT.id), 10.0)
        await placements.place("alice", "s1", block(2, OTHER.id, FACT.id), 10.0)
        await placements.place("alice", "s1", block(2, OTHER.id, suffix="again"), 11.0)
        await placements.place("bob", "s1", block(0, OTHER.id), 10.0)
        placed = sorted(await placements.placed("alice", "s1"), key=lambda row: row[0].turn)
        assert [(b, set(records)) for b, records in placed] == [
            (block(0, FACT.id), {FACT.id}),
            (block(2, OTHER.id, suffix="again"), {OTHER.id}),
        ]
        assert placed[0][1][FACT.id] == FACT

        await index.delete(None, FACT.id)  # a memory forgotten: the block says so
        placed = sorted(await placements.placed("alice", "s1"), key=lambda row: row[0].turn)
        assert [set(records) for _, records in placed] == [set(), {OTHER.id}]
        await placements.drop("alice", "s1", [0, 5])
        assert [b.turn for b, _ in await placements.placed("alice", "s1")] == [2]
        assert len(await placements.placed("bob", "s1")) == 1

    run(scenario)


def test_a_conversation_keeps_its_latest_blocks_and_a_day_of_them(
    run: Callable[[Scenario], None],
) -> None:
    async def scenario(placements: Placements, index: Any) -> None:
        await placements.place("bob", "old", block(0, FACT.id), 0.0)
        for turn in range(PER_CONVERSATION + 3):
            await placements.place("alice", "long", block(turn, FACT.id), 10.0)
        turns = sorted(b.turn for b, _ in await placements.placed("alice", "long"))
        assert turns == list(range(3, PER_CONVERSATION + 3))
        await placements.place("alice", "later", block(0, FACT.id), KEEP_SECONDS + 1.0)
        assert await placements.placed("bob", "old") == []

    run(scenario)
