"""The SQLite memory index driven from plain (and hypothesis) tests: memories to add, and
an index with its own event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

T = TypeVar("T")


def memory(
    text: str,
    *,
    user: str = "alice",
    project: str = "shop",
    session: str | None = "s1",
    at: float = 1_000.0,
) -> MemoryRecord:
    return MemoryRecord(
        memory_id(user, project, text), user, project, session, "curl", "m", at, text
    )


class Index:
    """An index and an event loop to drive it from plain (and hypothesis) tests."""

    def __init__(self, path: Path) -> None:
        self.runner = asyncio.Runner()
        self.path = path
        self.index = self.runner.run(self._open())

    async def _open(self) -> SQLiteMemoryIndex:
        return SQLiteMemoryIndex(self.path)

    def __call__(self, work: Callable[[SQLiteMemoryIndex], Awaitable[T]]) -> T:
        async def call() -> T:
            return await work(self.index)

        return self.runner.run(call())

    def add(self, *records: MemoryRecord) -> None:
        self(lambda index: index.add(list(records)))

    def texts(
        self,
        user: str | None,
        project: str | None,
        query: str,
        exclude_session: str | None = None,
    ) -> list[str]:
        hits = self(
            lambda index: index.search(
                user, project, query, limit=5, exclude_session=exclude_session
            )
        )
        return [hit.record.text for hit in hits]

    def close(self) -> None:
        self.runner.run(self.index.aclose())
        self.runner.close()
