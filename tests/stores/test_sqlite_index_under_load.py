"""The SQLite index under load, on real files: its writes wait for the file's other
writers."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_recall import add_in_batches, latency_corpus

USER, PROJECT = "user0", "project0"  # latency_corpus's one scope
MEMORIES = 5_000  # in one project: each search scores all of its matching memories


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """An index file of MEMORIES memories, and questions it holds the answers to."""
    facts, records = latency_corpus(MEMORIES, random.Random(MEMORIES), users=1, projects=1)
    path = tmp_path_factory.mktemp("seeded") / "memory.sqlite3"

    async def seed() -> None:
        index = SQLiteMemoryIndex(path)
        try:
            await add_in_batches(index, records)
        finally:
            await index.aclose()

    asyncio.run(seed())
    return path, [fact.own_words for fact in facts]


def copy_of(seeded: tuple[Path, list[str]], tmp_path: Path) -> Path:
    path = tmp_path / "memory.sqlite3"
    shutil.copy(seeded[0], path)
    return path


def test_the_first_write_waits_for_another_writer_of_the_file(
    seeded: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """The index's first write reads FTS5's config before it writes; with the session
    store writing meanwhile, it must wait its turn, not fail (and lose the batch)."""
    path = copy_of(seeded, tmp_path)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another writer of the file, for a moment
    finishing = threading.Timer(0.3, other.execute, ["COMMIT"])
    finishing.start()

    async def first_write() -> tuple[int, int]:
        index = SQLiteMemoryIndex(path)
        try:
            stored = len(await index.list_memories(USER, PROJECT, MEMORIES * 2, 0))
            text = "User: what is the name of service 1?\nAssistant: heron-1"
            record = MemoryRecord(
                memory_id(USER, PROJECT, text), USER, PROJECT, "s", "curl", "m", 1.0, text
            )
            await index.add([record])
            return stored, len(await index.list_memories(USER, PROJECT, MEMORIES * 2, 0))
        finally:
            await index.aclose()

    try:
        stored, after = asyncio.run(first_write())
        assert after == stored + 1
    finally:
        finishing.join()
        other.close()
