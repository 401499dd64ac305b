"""The memory indexes (SQLite and PostgreSQL) driven from plain (and hypothesis) tests:
memories to add, and an index with its own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from memory_proxy.stores.search_admission import DEFAULT_BUDGET
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

T = TypeVar("T")
LOADED_MACHINE = 10.0  # seconds
# Words that stem alike ("deploying", "deployed"), fold ("Staging", "café") and repeat.
WORDS = ["deploying", "deployed", "Staging", "ports", "port", "café", "5433", "the", "heron"]
FORGETTING = ["nothing", "project", "user", "one", "oldest"]


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
    """An index and an event loop to drive it from plain (and hypothesis) tests: SQLite
    in the file at a Path (or in memory), PostgreSQL at a URL."""

    def __init__(self, where: Path | str, search_budget: float | None = None) -> None:
        """`search_budget`: SQLite's default unless named; PostgreSQL's is its statement
        timeout too, so a loaded machine's."""
        self.runner = asyncio.Runner()
        self.where = where
        self.search_budget = search_budget
        self.index: MemoryIndex = self.runner.run(self._open())

    @property
    def sqlite(self) -> SQLiteMemoryIndex:
        assert isinstance(self.index, SQLiteMemoryIndex), "a test of the SQLite index"
        return self.index

    async def _open(self) -> MemoryIndex:
        budget = self.search_budget
        if isinstance(self.where, str):
            return PostgresMemoryIndex(self.where, search_budget=budget or LOADED_MACHINE)
        return SQLiteMemoryIndex(self.where, search_budget=budget or DEFAULT_BUDGET)

    def __call__(self, work: Callable[[MemoryIndex], Awaitable[T]]) -> T:
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


class BlankIndexes:
    """An index holding nothing for each hypothesis example, in one place (`where`):
    SQLite's a new one each time; PostgreSQL's opened once and emptied each time. The
    index keeps nothing of its data outside its tables, so an emptied one is a new one
    but for its connections, which cost most of an example (about five a time, each a
    server process: 50-90 ms of CPU where the example's own work is 10-30)."""

    def __init__(self, where: Path | str) -> None:
        self.where = where
        self._postgres: tuple[Index, psycopg.Connection[Any]] | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[Index]:
        if not isinstance(self.where, str):
            opened = Index(self.where)
            try:
                yield opened
            finally:
                opened.close()
            return
        if self._postgres is None:
            self._postgres = Index(self.where), psycopg.connect(self.where, autocommit=True)
        index, db = self._postgres
        db.execute("TRUNCATE memories, memory_terms")
        yield index

    def close(self) -> None:
        if self._postgres is not None:
            index, db = self._postgres
            index.close()
            db.close()


def stored_memories() -> st.SearchStrategy[list[MemoryRecord]]:
    """Memories of two users' two projects, their texts a few of WORDS."""
    text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join)
    one = st.builds(
        lambda user, project, words: memory(words, user=user, project=project),
        st.sampled_from(["alice", "bob"]),
        st.sampled_from(["shop", "blog"]),
        text,
    )
    return st.lists(one, max_size=12)


def forget(index: Index, records: list[MemoryRecord], how: str) -> None:
    """Some of `records` forgotten, as FORGETTING names: alice's shop, bob, the first
    record, the two oldest, or nothing."""
    if how == "project":
        index(lambda i: i.forget_project("alice", "shop"))
    elif how == "user":
        index(lambda i: i.forget_user("bob"))
    elif how == "one" and records:
        index(lambda i: i.delete(None, records[0].id))
    elif how == "oldest":
        index(lambda i: i.forget_oldest(2))
