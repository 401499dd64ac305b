"""SQLiteStore.append: appends queued while the file's thread is busy share one
transaction, and behave as if each had its own (order, bounds, a failure of its own)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.messages import Message
from memory_proxy.stores.in_memory import InMemoryStore
from memory_proxy.stores.sqlite import IN_MEMORY, SQLiteStore
from tests.stores.session_calls_support import message


async def _commits_while(store: SQLiteStore, work: Any) -> int:
    """How many transactions the store's connection began while `work` ran."""
    began: list[str] = []

    def trace(statement: str) -> None:
        if statement.startswith("BEGIN"):
            began.append(statement)

    await store._file.run(lambda: store._file.db.set_trace_callback(trace))
    await work
    await store._file.run(lambda: store._file.db.set_trace_callback(None))
    return len(began)


def test_appends_made_together_are_committed_together_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            await store.append("alice", "warm", [message(0)], partial=False)
            calls = [("alice", f"s{n % 8}", [message(n)]) for n in range(40)]
            appends = asyncio.gather(*(store.append(*c, partial=False) for c in calls))
            assert await _commits_while(store, appends) <= 2  # 40, one per append, before
            for session in range(8):
                expected = [message(n) for n in range(session, 40, 8)]
                assert await store.load("alice", f"s{session}") == expected
                info = await store.session("alice", f"s{session}")
                assert info is not None and info.message_count == 5
        finally:
            await store.aclose()

    asyncio.run(main())


def test_an_append_that_fails_fails_alone(tmp_path: Path) -> None:
    unwritable: Message = {"role": "user", "content": object()}  # type: ignore[typeddict-item]

    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            results = await asyncio.gather(
                store.append("alice", "s1", [message(1)], partial=False),
                store.append("alice", "s2", [message(2), unwritable], partial=False),
                store.append("alice", "s3", [message(3)], partial=False),
                return_exceptions=True,
            )
            assert results[0] == 0 and results[2] == 0
            assert isinstance(results[1], TypeError)
            assert await store.load("alice", "s1") == [message(1)]
            assert await store.load("alice", "s2") == []  # none of it half written
            assert await store.session("alice", "s2") is None
            assert await store.load("alice", "s3") == [message(3)]
        finally:
            await store.aclose()

    asyncio.run(main())


appends = st.lists(
    st.tuples(st.sampled_from(["alice", "bob"]), st.sampled_from(["a", "b"]), st.integers(1, 4)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=30, deadline=None)
@given(appends=appends, together=st.integers(1, 12))
def test_appends_together_end_as_one_at_a_time(
    appends: list[tuple[str, str, int]], together: int
) -> None:
    """Whatever groups they are made in: the same messages kept, the same counts dropped,
    as the in-memory store appending one at a time."""

    async def main() -> None:
        sqlite = SQLiteStore(Path(IN_MEMORY), 3600, max_messages=5)
        reference = InMemoryStore(3600, max_messages=5)
        try:
            calls = [
                (user, session, [message(index * 10 + n) for n in range(count)])
                for index, (user, session, count) in enumerate(appends)
            ]
            dropped: list[int] = []
            for start in range(0, len(calls), together):
                group = calls[start : start + together]
                dropped += await asyncio.gather(*(sqlite.append(*c, partial=False) for c in group))
            expected = [await reference.append(*c, partial=False) for c in calls]
            assert dropped == expected
            for user in ("alice", "bob"):
                for session in ("a", "b"):
                    assert await sqlite.load(user, session) == await reference.load(user, session)
        finally:
            await sqlite.aclose()
            await reference.aclose()

    asyncio.run(main())


def test_a_short_message_is_stored_plain_and_a_long_one_packed(tmp_path: Path) -> None:
    """Deflating a chat message of a few hundred bytes costs as much as a 1 kB one, and
    inflating it again each time the session is read (packed_text.py)."""
    short: Message = {"role": "user", "content": "where is staging? " * 5}
    long: Message = {"role": "assistant", "content": "staging is the second cluster. " * 40}

    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            await store.append("alice", "s1", [short, long], partial=False)
            stored = await store._file.run(
                lambda: store._file.db.execute(
                    "SELECT typeof(message) FROM messages ORDER BY id"
                ).fetchall()
            )
            assert stored == [("text",), ("blob",)]
            assert await store.load("alice", "s1") == [short, long]
        finally:
            await store.aclose()

    asyncio.run(main())
