"""MemoryIndexer makes a batch's memories a slice at a time: the event loop serves other
work between slices, so that a batch of thousands never holds every request at once."""

from __future__ import annotations

import asyncio
import collections

from memory_proxy.memory.indexing import MEMORIES_PER_TURN, MemoryIndexer
from memory_proxy.records.memory import MemoryRecord


class KeptIndex:
    """A recall backend that keeps what it is given."""

    def __init__(self) -> None:
        self.added: list[MemoryRecord] = []

    async def add(self, records: list[MemoryRecord]) -> None:
        self.added += records


def test_a_batch_of_memories_is_made_a_slice_per_turn_of_the_loop() -> None:
    async def main() -> tuple[list[int], list[MemoryRecord]]:
        loop = asyncio.get_running_loop()
        turn = [0]

        def tick() -> None:  # one tick per turn of the loop
            turn[0] += 1
            loop.call_soon(tick)

        made_in: list[int] = []

        def redact(text: str) -> str:
            made_in.append(turn[0])
            return text

        index = KeptIndex()
        indexer = MemoryIndexer(index, lambda count: None, redact)  # type: ignore[arg-type]
        indexer.start()
        tick()
        for n in range(1000):
            indexer.remember(
                user_id="alice",
                project="shop",
                session_id=None,
                client="curl",
                model="m",
                question="hi",
                answer=f"noted {n}",
            )
        await indexer.aclose()
        return made_in, index.added

    made_in, added = asyncio.run(main())
    assert len(made_in) == 1000
    most = max(collections.Counter(made_in).values())
    assert most <= MEMORIES_PER_TURN  # all 1000 in one turn on 082e0b6
    assert [record.text for record in added] == [
        f"User: hi\nAssistant: noted {n}" for n in range(1000)
    ]
