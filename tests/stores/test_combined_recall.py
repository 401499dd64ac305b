"""`recall.backend: both`: the local hits always stand; Supermemory's join them when they
come in time."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pytest_httpserver import HTTPServer

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.base import RecallBackend
from memory_proxy.stores.combined_recall import CombinedRecall
from memory_proxy.stores.supermemory_index import SupermemoryIndex
from tests.memory.recall_support import BrokenIndex, SlowIndex, WordIndex


def record(text: str, session_id: str = "s-1") -> MemoryRecord:
    return MemoryRecord(
        memory_id("alice", "p", text), "alice", "p", session_id, "c", None, 0.0, text
    )


class Counts:
    def __init__(self) -> None:
        self.late = 0
        self.failed = 0

    def combined(
        self, local: WordIndex, remote: RecallBackend, wait: float = 1.0
    ) -> CombinedRecall:
        def late() -> None:
            self.late += 1

        def failed() -> None:
            self.failed += 1

        return CombinedRecall(local, remote, wait, on_remote_late=late, on_remote_failure=failed)


async def texts(backend: CombinedRecall, query: str, limit: int = 5) -> list[str]:
    hits = await backend.search("alice", "p", query, limit=limit)
    return [hit.record.text for hit in hits]


def test_local_hits_come_first_then_new_remote_ones_within_the_limit() -> None:
    async def scenario() -> None:
        local, remote = WordIndex(), WordIndex()
        await local.add([record("staging port 5433"), record("staging host heron")])
        await remote.add([record("staging port 5433"), record("staging runs postgres 16")])
        backend = Counts().combined(local, remote)
        found = await texts(backend, "staging port host postgres")
        assert found[:2] == ["staging port 5433", "staging host heron"]
        assert found[2:] == ["staging runs postgres 16"]  # the shared text only once
        assert await texts(backend, "staging port host postgres", limit=2) == found[:2]

    asyncio.run(scenario())


@pytest.mark.parametrize(("remote", "late", "failed"), [(SlowIndex(), 1, 0), (BrokenIndex(), 0, 1)])
def test_a_late_or_failing_remote_leaves_the_local_hits_and_is_counted(
    remote: WordIndex, late: int, failed: int
) -> None:
    async def scenario() -> None:
        local = WordIndex()
        await local.add([record("staging port 5433")])
        counts = Counts()
        backend = counts.combined(local, remote, wait=0.05)
        assert await texts(backend, "staging port") == ["staging port 5433"]
        assert (counts.late, counts.failed) == (late, failed)

    asyncio.run(scenario())


def test_memories_go_to_both_and_a_failing_side_is_raised_after_the_other_wrote() -> None:
    async def scenario() -> None:
        local = WordIndex()
        backend = Counts().combined(local, BrokenIndex())
        with pytest.raises(OSError, match="disk full"):
            await backend.add([record("staging port 5433")])
        assert list(local.records.values()) == [record("staging port 5433")]

        remote = WordIndex()
        await Counts().combined(WordIndex(), remote).add([record("x y z")])
        assert len(remote.records) == 1

    asyncio.run(scenario())


def test_closing_closes_the_remote_only_the_app_owns_the_local_index() -> None:
    local, remote = WordIndex(), WordIndex()
    asyncio.run(Counts().combined(local, remote).aclose())
    assert (local.closed, remote.closed) == (False, True)


def test_a_private_request_searches_the_local_index_only(httpserver: HTTPServer) -> None:
    """Its question never goes to Supermemory; the local index finds the private model's
    memories for it, and only for it."""

    async def scenario() -> None:
        told_llama = dataclasses.replace(record("the vault code is 4471"), private=True)
        local = WordIndex()
        await local.add([told_llama])
        remote = SupermemoryIndex("sm-key", httpserver.url_for("/"))
        backend = Counts().combined(local, remote)
        try:
            hits = await backend.search("alice", "p", "vault code", limit=5, privacy="private")
            hosted = await backend.search("alice", "p", "vault code", limit=5, privacy="mixed")
        finally:
            await backend.aclose()
        assert [hit.record for hit in hits] == [told_llama]
        assert hosted == []

    asyncio.run(scenario())
    assert httpserver.log == []
