"""Recall by meaning's parts: the writer that embeds memories off the request path
(retried, failures counted and logged once, then it resumes), and the fusion of lexical
and semantic hits by score."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from memory_proxy.memory import embeddings
from memory_proxy.memory.embeddings import EmbeddingWriter, fuse
from memory_proxy.records.memory import Recalled
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
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


FACT = memory("the bucket is osprey-9")
CHATTER = memory("lunch at noon")
OTHER = memory("the deploy is on fridays")


def test_fusion_lets_through_words_or_meaning_best_combined_first() -> None:
    lexical = [(Recalled(FACT, 9.0), 0.9), (Recalled(CHATTER, 5.0), 0.1)]
    similar = [(OTHER, 0.7), (CHATTER, 0.2), (FACT, 0.3)]
    fused = fuse(lexical, 0.4, similar, 0.6)
    assert [(hit.record.text, round(hit.score, 2)) for hit in fused] == [
        (FACT.text, 1.2),
        (OTHER.text, 0.7),
    ]
    assert fuse(lexical, 0.4, [], 0.6) == [Recalled(FACT, 0.9, 0.9)]
