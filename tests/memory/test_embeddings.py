"""Recall by meaning's parts: the writer that embeds memories off the request path
(retried, failures counted and logged once, then it resumes), and what may be embedded
(the fusion with the word search: test_fusion.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import cast

from memory_proxy.memory import embeddings
from memory_proxy.memory.embeddings import EmbeddingWriter, SemanticSearch
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_vectors import SQLiteVectors
from tests.stores.sqlite_index_support import memory
from tests.support import LogRecords, eventually


class FlakyEmbedder:
    """Fails while `failing`, counting its calls; a one-dimension vector per text after."""

    def __init__(self) -> None:
        self.failing = True
        self.calls = 0

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        if self.failing:
            raise ConnectionError("provider down")
        return [[1.0] for _ in texts]


def vectors(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM memory_vectors").fetchone()
    return int(count)


def test_failures_are_retried_counted_and_logged_once_then_embedding_resumes(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        embedder, failures = FlakyEmbedder(), []
        writer = EmbeddingWriter(
            embedder,
            index.vectors,
            on_failure=lambda: failures.append(1),
            idle_seconds=0.01,
            failed_pause_seconds=0.01,
        )
        await index.add([memory("we ship on fridays")])
        with LogRecords().of("memory_proxy.memory") as logs:
            writer.start()
            await eventually(lambda: len(failures) >= 2)
            assert embedder.calls >= 2 * embeddings.ATTEMPTS  # each batch tried ATTEMPTS times
            embedder.failing = False
            await eventually(lambda: vectors(tmp_path / "memory.sqlite3") == 1)
        await writer.aclose()
        await index.aclose()
        messages = [record.getMessage() for record in logs]
        assert sum("embedding memories failed" in m for m in messages) == 1

    asyncio.run(scenario())


class RecordingEmbedder:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return [[1.0] for _ in texts]


def test_a_hosted_embedding_model_never_gets_a_private_models_memory(tmp_path: Path) -> None:
    told_llama = dataclasses.replace(memory("the vault pin is 4711"), private=True)
    hosted = memory("we ship on fridays")

    async def scenario() -> list[str]:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        embedder = RecordingEmbedder()
        writer = EmbeddingWriter(embedder, index.vectors, on_failure=lambda: None)
        await index.add([told_llama, hosted])
        writer.start()
        await eventually(lambda: vectors(tmp_path / "memory.sqlite3") == 1)
        await writer.aclose()
        await index.aclose()
        return embedder.texts

    assert asyncio.run(scenario()) == [hosted.text]


def test_only_a_private_embedding_model_gets_the_questions_of_private_requests() -> None:
    hosted = SemanticSearch(RecordingEmbedder(), cast(SQLiteVectors, None))
    private = SemanticSearch(RecordingEmbedder(), cast(SQLiteVectors, None), private=True)
    assert [hosted.may_embed(p) for p in ("hosted", "mixed", "private")] == [True, False, False]
    assert [private.may_embed(p) for p in ("hosted", "mixed", "private")] == [True, True, True]


def test_a_memory_that_takes_a_forgotten_ones_place_is_embedded_too(tmp_path: Path) -> None:
    """SQLite gives a new row the newest forgotten row's seq, behind the writer's cursor."""
    first, newest, later = memory("one"), memory("two"), memory("three")

    async def scenario() -> list[str]:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        embedder = RecordingEmbedder()
        writer = EmbeddingWriter(
            embedder, index.vectors, on_failure=lambda: None, idle_seconds=0.001
        )
        await index.add([first, newest])
        writer.start()
        await eventually(lambda: vectors(tmp_path / "memory.sqlite3") == 2)
        assert await index.delete("alice", newest.id)
        await index.add([later])
        await eventually(lambda: vectors(tmp_path / "memory.sqlite3") == 2)
        await writer.aclose()
        await index.aclose()
        return embedder.texts

    assert asyncio.run(scenario()) == [first.text, newest.text, later.text]
