"""The SQLite index under a flood of searches (issue 17), on real files: a search whose
waiter left is not run, writes are not held back behind searches, and a question asked
once the flood is over is recalled at once. The waiters are recall's own (with its time
budget), and the writes go through the indexer's queue, as in the proxy."""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.indexing import MemoryIndexer
from memory_proxy.memory.question import last_human_turn
from memory_proxy.memory.recall import Recall
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.wire.registry import CHAT
from scripts.bench_recall import add_in_batches, latency_corpus
from tests.support import eventually

USER, PROJECT = "user0", "project0"  # latency_corpus's one scope
MEMORIES = 5_000  # in one project: each search scores all of its matching memories
FLOOD = 4_000  # questions at once, queued behind a held search: seconds of work if run
WRITES = 100


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


class Counts:
    def __init__(self) -> None:
        self.timeouts = self.failures = self.dropped = 0

    def timeout(self) -> None:
        self.timeouts += 1

    def failure(self) -> None:
        self.failures += 1

    def drop(self, count: int) -> None:
        self.dropped += count


def recall(index: SQLiteMemoryIndex, timeout_ms: int, counts: Counts) -> Recall:
    settings = RecallSettings(timeout_ms=timeout_ms)
    return Recall(index, settings, on_timeout=counts.timeout, on_failure=counts.failure)


async def recalled(recaller: Recall, question: str, session: str) -> int:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": question}]}
    outcome = await recaller.apply(
        CHAT,
        body,
        body,
        last_human_turn(CHAT, body),
        user_id=USER,
        project=PROJECT,
        session_id=session,
        history_injected=False,
    )
    return outcome.recalled


async def flood(index: SQLiteMemoryIndex, questions: list[str], counts: Counts) -> None:
    """FLOOD questions at once, each waiting 1 ms for its search."""
    hasty = recall(index, 1, counts)
    await asyncio.gather(
        *(recalled(hasty, questions[n % len(questions)], f"flood-{n}") for n in range(FLOOD))
    )


class Traced:
    """Every connection opened reports each search it starts; the first one holds its
    thread (before SQLite runs it) until released."""

    def __init__(self) -> None:
        self.searches = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    def connect(self, original: Callable[..., sqlite3.Connection]) -> Callable[..., Any]:
        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            connection = original(*args, **kwargs)
            connection.set_trace_callback(self._statement)
            return connection

        return connect

    def _statement(self, sql: str) -> None:
        if "memories_fts MATCH" in sql:
            self.searches += 1
            if self.searches == 1:
                self.holding.set()
                self.release.wait()  # the fixture releases it, whatever happens


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Traced]:
    traced = Traced()
    monkeypatch.setattr(sqlite3, "connect", traced.connect(sqlite3.connect))
    yield traced
    traced.release.set()


async def held_search(index: SQLiteMemoryIndex, question: str, traced: Traced) -> Any:
    """A search that holds its thread, with a flood of questions behind it."""
    held = asyncio.ensure_future(index.search(USER, PROJECT, question, limit=5))
    await eventually(traced.holding.is_set)
    return held


def test_a_flood_of_searches_holds_back_no_memory_write(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    asyncio.run(_a_flood_of_searches_holds_back_no_memory_write(seeded, tmp_path, traced))


async def _a_flood_of_searches_holds_back_no_memory_write(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    index = SQLiteMemoryIndex(copy_of(seeded, tmp_path))
    counts = Counts()
    indexer = MemoryIndexer(index, counts.drop)
    indexer.start()
    try:
        stored = len(await index.list_memories(USER, PROJECT, MEMORIES * 2, 0))
        held = await held_search(index, seeded[1][0], traced)
        await flood(index, seeded[1], counts)
        for n in range(WRITES):
            indexer.remember(
                user_id=USER,
                project=PROJECT,
                session_id=f"new-{n}",
                client="curl",
                model="m",
                question=f"what is the name of service {n}?",
                answer=f"service {n} is called heron-{n}",
            )
        await indexer.aclose()  # writes what is queued, for 5 s at most
        assert counts.dropped == 0
        async with asyncio.timeout(5):  # stored, while the searches still wait
            listed = await index.list_memories(USER, PROJECT, MEMORIES * 2, 0)
        assert len(listed) == stored + WRITES
        traced.release.set()
        assert await held
    finally:
        traced.release.set()
        await index.aclose()


def test_once_a_flood_of_searches_is_over_a_question_is_recalled_at_once(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    asyncio.run(
        _once_a_flood_of_searches_is_over_a_question_is_recalled_at_once(seeded, tmp_path, traced)
    )


async def _once_a_flood_of_searches_is_over_a_question_is_recalled_at_once(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    index = SQLiteMemoryIndex(copy_of(seeded, tmp_path))
    counts = Counts()
    try:
        held = await held_search(index, seeded[1][0], traced)
        await flood(index, seeded[1], counts)
        traced.release.set()
        assert await held
        idle = recall(index, 1000, counts)  # "within a second" (issue 17)
        timeouts_before = counts.timeouts
        assert await recalled(idle, seeded[1][0], "after-the-flood") >= 1
        assert counts.timeouts == timeouts_before
        assert counts.failures == 0
    finally:
        traced.release.set()
        await index.aclose()


def test_a_search_whose_waiter_left_is_never_run(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    asyncio.run(_a_search_whose_waiter_left_is_never_run(seeded, tmp_path, traced))


async def _a_search_whose_waiter_left_is_never_run(
    seeded: tuple[Path, list[str]], tmp_path: Path, traced: Traced
) -> None:
    index = SQLiteMemoryIndex(copy_of(seeded, tmp_path))
    question = seeded[1][0]

    def search() -> Any:
        return index.search(USER, PROJECT, question, limit=5)

    try:
        held = await held_search(index, question, traced)
        for _ in range(10):  # each waits 10 ms, then leaves
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(search(), 0.01)
        traced.release.set()
        assert await held
        assert await search()
        assert traced.searches == 2  # the held one and the last one
    finally:
        traced.release.set()
        await index.aclose()


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
