"""Recall by meaning (`recall.embedding_model`), beside the lexical search: memories are
embedded off the request path, the question as its request arrives.

A hosted embedding model (not in `memory.private_models`) never gets a private model's
memory or the question of a request that may go to a private model: those memories are
found by their words alone.

`EmbeddingWriter` embeds, in batches, the memories that have no vector yet (the newest
after the ones it did), retrying a failing batch a few times; a batch that still fails is
counted and logged once (until embedding works again), and tried again after a pause.
`SemanticSearch` embeds a question and finds the closest memories of its scope (fusion.py
merges them with the word search's hits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tenacity import AsyncRetrying, stop_after_attempt, wait_exponential

from memory_proxy.logging_setup import log_failure
from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores.sqlite_vectors import SQLiteVectors

logger = logging.getLogger("memory_proxy.memory")

BATCH = 32  # memories embedded in one call
IDLE_SECONDS = 1.0  # between looks for new memories when every one has its vector
RESCAN_IDLE_ROUNDS = 60  # idle looks between two looks from the first memory
ATTEMPTS = 3  # of one batch before it counts as failed
FAILED_PAUSE_SECONDS = 30.0  # before a failed batch is tried again


class Embedder(Protocol):
    """What turns texts into vectors: LiteLLM's /v1/embeddings (forwarding/embeddings.py)."""

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


@dataclass(frozen=True)
class SemanticSearch:
    """`private`: the embedding model is one of `memory.private_models`, so a private
    model's memories and the questions of requests to private models may go to it."""

    embedder: Embedder
    vectors: SQLiteVectors
    private: bool = False

    def may_embed(self, privacy: Privacy) -> bool:
        """Whether a question of a request going where `privacy` says may be embedded."""
        return self.private or privacy == "hosted"

    async def similar(
        self,
        user_id: str,
        project: str,
        question: str,
        *,
        limit: int,
        exclude_session: str | None,
        privacy: Privacy,
    ) -> list[tuple[MemoryRecord, float]]:
        (vector,) = await self.embedder.embed([question])
        return await self.vectors.nearest(
            user_id,
            project,
            vector,
            limit=limit,
            exclude_session=exclude_session,
            privacy=privacy,
        )


class EmbeddingWriter:
    """Gives every memory of the index a vector, in the background."""

    def __init__(
        self,
        embedder: Embedder,
        vectors: SQLiteVectors,
        *,
        on_failure: Callable[[], None],
        private: bool = False,
        idle_seconds: float = IDLE_SECONDS,
        failed_pause_seconds: float = FAILED_PAUSE_SECONDS,
    ) -> None:
        self._embedder = embedder
        self._vectors = vectors
        self._on_failure = on_failure
        self._private = private  # a private model's memories embedded too
        self._idle_seconds = idle_seconds
        self._failed_pause_seconds = failed_pause_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="memory-embeddings")

    async def _run(self) -> None:
        after, failing, idle = 0, False, 0
        while True:
            # Now and then from the start: a new memory may take the place (seq) of the
            # newest ones forgotten, behind `after`.
            start = 0 if idle % RESCAN_IDLE_ROUNDS == RESCAN_IDLE_ROUNDS - 1 else after
            try:
                batch = await self._vectors.unembedded(start, BATCH, private_too=self._private)
                if batch:
                    vectors = await self._embed([text for _, text in batch])
                    pairs = [(seq, v) for (seq, _), v in zip(batch, vectors, strict=True)]
                    await self._vectors.add(pairs)
                    after = max(after, batch[-1][0])
            except Exception as exc:
                self._on_failure()
                if not failing:
                    log_failure(logger, "embedding memories failed; recall goes on by words", exc)
                failing = True
                await asyncio.sleep(self._failed_pause_seconds)
                continue
            if failing:
                logger.warning("embedding memories works again")
                failing = False
            if not batch:
                idle += 1
                await asyncio.sleep(self._idle_seconds)

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=2),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                vectors = await self._embedder.embed(texts)
                if len(vectors) != len(texts):
                    raise ValueError(f"{len(vectors)} vectors for {len(texts)} texts")
                return vectors
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
