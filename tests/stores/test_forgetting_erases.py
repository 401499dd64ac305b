"""Forgetting erases: after a memory, a project, a user or a session is forgotten (or a
session expires), its text is in neither the SQLite file nor its write-ahead log, while
the file is open and after it is closed. The bytes themselves are searched
(file_traces.py), as the issue did: SQL found nothing long before the bytes were gone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.records.messages import Message
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.stores.file_traces import traces, unique_token

FILLER_WORDS = "staging database port deploy pipeline migration cache queue worker"


def memory(text: str, *, user: str, project: str, at: float = 1_000.0) -> MemoryRecord:
    return MemoryRecord(memory_id(user, project, text), user, project, "s1", "curl", "m", at, text)


def filler(count: int, start: int) -> list[MemoryRecord]:
    return [
        memory(f"User: note {n}?\nAssistant: {FILLER_WORDS} {n}", user="alice", project="shop")
        for n in range(start, start + count)
    ]


def checkpoint(path: Path) -> None:
    """What SQLite does on its own now and then: the log's pages copied into the file,
    the log kept for reuse (the text is then in both)."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(PASSIVE)")


Forget = Callable[[SQLiteMemoryIndex, MemoryRecord], Awaitable[object]]
FORGETS: dict[str, Forget] = {
    "one memory": lambda index, record: index.delete(None, record.id),
    "one memory of its user": lambda index, record: index.delete(record.user_id, record.id),
    "a project of every user": lambda index, record: index.forget_project(None, record.project),
    "a project of one user": lambda index, record: index.forget_project(
        record.user_id, record.project
    ),
    "a user": lambda index, record: index.forget_user(record.user_id),
}


@pytest.mark.parametrize("how", FORGETS)
def test_a_forgotten_memory_leaves_no_trace_in_the_file_or_its_log(
    tmp_path: Path, how: str
) -> None:
    asyncio.run(forget_a_memory(tmp_path / "memory.sqlite3", FORGETS[how]))


async def forget_a_memory(path: Path, forget: Forget) -> None:
    secret, kept = unique_token(), unique_token()
    forgotten = memory(
        f"User: the vault password is {secret}\nAssistant: stored, {secret} it is",
        user="mallory",
        project="vault",
    )
    index = SQLiteMemoryIndex(path)
    try:
        for start in range(0, 200, 50):  # several transactions: several index segments
            await index.add(filler(50, start))
        await index.add([forgotten, memory(f"User: keep {kept}", user="alice", project="shop")])
        checkpoint(path)
        await index.add(filler(50, 200))
        assert traces(path, secret) > 0

        await forget(index, forgotten)

        assert traces(path, secret) == 0
        assert traces(path, kept) > 0  # the search sees what it should
        assert await index.get(None, forgotten.id) is None
        assert [hit.record.text for hit in await index.search(None, None, kept, limit=5)]
    finally:
        await index.aclose()
    assert traces(path, secret) == 0
    assert traces(path, kept) > 0


def said(text: str) -> Message:
    return {"role": "user", "content": text}


async def sessions_with_a_secret(
    path: Path, secret: str, kept: str, clock: Callable[[], float]
) -> SQLiteStore:
    store = SQLiteStore(path, ttl_seconds=3600, clock=clock)
    for n in range(40):
        await store.append(
            "alice",
            f"filler-{n}",
            [said(f"{FILLER_WORDS} {n}")],
            partial=False,
        )
    exchange: list[Message] = [
        {"role": "user", "content": f"my password is {secret}"},
        {"role": "assistant", "content": f"I will remember {secret}"},
    ]
    await store.append("mallory", "vault", exchange, partial=False)
    checkpoint(path)
    await store.append("mallory", "vault", exchange, partial=False)
    return store


def test_a_deleted_session_leaves_no_trace_in_the_file_or_its_log(tmp_path: Path) -> None:
    asyncio.run(delete_a_session(tmp_path / "memory.sqlite3"))


async def delete_a_session(path: Path) -> None:
    secret, kept = unique_token(), unique_token()
    store = await sessions_with_a_secret(path, secret, kept, clock=lambda: 10_000.0)
    try:
        await store.append("alice", "kept", [said(kept)], partial=False)
        assert traces(path, secret) > 0

        assert await store.delete("mallory", "vault")

        assert traces(path, secret) == 0
        assert traces(path, kept) > 0
    finally:
        await store.aclose()
    assert traces(path, secret) == 0


def test_an_expired_session_leaves_no_trace_once_purged(tmp_path: Path) -> None:
    asyncio.run(purge_a_session(tmp_path / "memory.sqlite3"))


async def purge_a_session(path: Path) -> None:
    secret, kept = unique_token(), unique_token()
    now = [10_000.0]
    store = await sessions_with_a_secret(path, secret, kept, clock=lambda: now[0])
    try:
        now[0] += 3_000
        await store.append("alice", "kept", [said(kept)], partial=False)
        now[0] += 1_000  # the others are past the hour; "kept" is not
        assert traces(path, secret) > 0

        assert await store.purge_expired() == 41

        assert traces(path, secret) == 0
        assert traces(path, kept) > 0
    finally:
        await store.aclose()
