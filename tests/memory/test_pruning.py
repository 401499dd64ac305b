"""Long-term memory in bounds, on a real SQLite file: memories past `retention_days` go
(and are erased), the oldest go while the file is over `max_mb` (a run of a few hundred
exchanges stays under a tiny cap), what went is counted, and the background task does it
by itself."""

from __future__ import annotations

import asyncio
import collections
import random
import string
from pathlib import Path

import pytest

from memory_proxy.memory import pruning
from memory_proxy.memory.pruning import OLD, OVER_SIZE, MemoryPruner
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.stores.file_traces import traces, unique_token
from tests.support import eventually

DAY = 86_400.0
NOW = 1_800_000_000.0


def memory(text: str, at: float, user: str = "alice", project: str = "shop") -> MemoryRecord:
    return MemoryRecord(memory_id(user, project, text), user, project, "s1", "curl", "m", at, text)


def exchange_text(rng: random.Random, n: int) -> str:
    """About 2,000 characters of words, as a memory of a long exchange holds."""
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) for _ in range(330)]
    return f"User: question {n}\nAssistant: " + " ".join(words)


class Counted(collections.Counter[str]):
    def __call__(self, what: str, count: int) -> None:
        self[what] += count


def test_memories_past_the_retention_go_and_leave_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    old_secret = unique_token()

    async def scenario() -> None:
        index = SQLiteMemoryIndex(path)
        counted = Counted()
        pruner = MemoryPruner(index, 30, None, counted, clock=lambda: NOW)
        try:
            ages = [45, 31, 29, 1, 0]  # days
            await index.add([memory(f"memory {age} days old", NOW - age * DAY) for age in ages])
            await index.add([memory(f"older still, {old_secret}", NOW - 400 * DAY)])
            assert await pruner.prune() == {OLD: 3}
            kept = await index.list_memories(None, None, 10, 0)
            assert [r.text for r in kept] == [f"memory {age} days old" for age in (0, 1, 29)]
            assert counted == {OLD: 3}
            assert traces(path, old_secret) == 0
            assert await pruner.prune() == {}  # nothing more, and not looked at again so soon
        finally:
            await index.aclose()

    asyncio.run(scenario())


def test_a_run_of_exchanges_stays_under_a_tiny_max_mb_dropping_the_oldest_first(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.sqlite3"
    max_mb = 0.25
    rng = random.Random(7)

    async def scenario() -> None:
        index = SQLiteMemoryIndex(path)
        counted = Counted()
        pruner = MemoryPruner(index, None, max_mb, counted)
        try:
            for batch in range(20):  # 400 exchanges of ~2 kB: far more than 0.25 MB
                await index.add(
                    [
                        memory(exchange_text(rng, n), NOW + n)
                        for n in range(batch * 20, batch * 20 + 20)
                    ]
                )
                await pruner.prune()
                assert (await index.use()).used_bytes <= max_mb * 2**20
            kept = await index.list_memories(None, None, 1000, 0)
            newest = sorted((r.created_at for r in kept), reverse=True)
            assert newest == [NOW + n for n in range(399, 399 - len(kept), -1)]  # the newest
            assert counted[OVER_SIZE] == 400 - len(kept) > 0
        finally:
            await index.aclose()
        assert path.stat().st_size <= max_mb * 2**20 * 1.5  # given back to the disk

    asyncio.run(scenario())


def test_the_background_task_prunes_by_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pruning, "SIZE_CHECK_SECONDS", 0.01)

    async def scenario() -> None:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        counted = Counted()
        pruner = MemoryPruner(index, 1, 10, counted, clock=lambda: NOW)
        pruner.start()
        try:
            await index.add([memory("from last year", NOW - 365 * DAY), memory("today", NOW)])
            await eventually(lambda: counted[OLD] == 1)
            assert [r.text for r in await index.list_memories(None, None, 10, 0)] == ["today"]
        finally:
            await pruner.aclose()
            await index.aclose()

    asyncio.run(scenario())


def test_no_bounds_no_task() -> None:
    pruner = MemoryPruner(object(), None, None, Counted())  # type: ignore[arg-type]
    pruner.start()
    assert pruner._task is None
