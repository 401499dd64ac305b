"""SQLiteStore's calls are queued for the file's thread in the order they are made, and
those queued together taken in one hop: histories read by one query, a history nobody
waits for any more not read, and every call seeing the ones made before it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.stores.sqlite import IN_MEMORY, SQLiteStore
from tests.stores import session_calls_support as session_calls
from tests.stores.session_calls_support import made_in_order, message


class _Statements:
    """The statements the store's connection runs while it is traced."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.run: list[str] = []

    async def __aenter__(self) -> _Statements:
        await self.store._file.run(lambda: self.store._file.db.set_trace_callback(self.run.append))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store._file.run(lambda: self.store._file.db.set_trace_callback(None))

    def reading_messages(self) -> list[str]:
        return [s for s in self.run if s.startswith("SELECT") and " messages m " in s]


def test_histories_asked_for_together_are_read_by_one_query(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            for n in range(20):
                await store.append("alice", f"s{n}", [message(n), message(n + 1)], partial=False)
            await store.append("bob", "s0", [message(99)], partial=False)
            async with _Statements(store) as statements:
                keys = [("alice", f"s{n}") for n in range(20)] + [("bob", "s0"), ("bob", "none")]
                histories = await asyncio.gather(*(store.load(*key) for key in keys))
            assert len(statements.reading_messages()) == 1  # 22, one per history, before
            assert histories == [[message(n), message(n + 1)] for n in range(20)] + [
                [message(99)],
                [],
            ]
        finally:
            await store.aclose()

    asyncio.run(main())


def test_appends_between_loads_share_one_transaction(tmp_path: Path) -> None:
    """As requests end and begin under load: an append, a load, an append... each
    append still sees the loads before it answered without it."""

    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            await store.append("alice", "warm", [message(0)], partial=False)
            made: list[Awaitable[Any]] = []
            for n in range(20):
                made.append(store.append("alice", f"s{n % 4}", [message(n)], partial=False))
                made.append(store.load("alice", f"s{n % 4}"))
            async with _Statements(store) as statements:
                outcomes = await asyncio.gather(*made)
            assert len([s for s in statements.run if s.startswith("BEGIN")]) == 1
            assert outcomes[1::2] == [
                [message(k) for k in range(n % 4, n + 1, 4)] for n in range(20)
            ]
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_history_nobody_waits_for_is_not_read(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        busy = threading.Event()
        try:
            await store.append("alice", "s1", [message(1)], partial=False)
            async with _Statements(store) as statements:
                blocked = asyncio.ensure_future(store._file.run(busy.wait))
                await asyncio.sleep(0)  # the file's thread busy from now on
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await store.load("alice", "s1")
                busy.set()
                await blocked
                assert await store.load("alice", "s1") == [message(1)]
            assert len(statements.reading_messages()) == 1  # the second load's only
        finally:
            busy.set()
            await store.aclose()

    asyncio.run(main())


def test_calls_are_run_in_the_order_they_are_made(tmp_path: Path) -> None:
    """A history asked for after a delete is read after it: a session deleted through the
    API is not put back into the request that follows."""

    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            made = await made_in_order(
                lambda: store.append("alice", "s1", [message(1)], partial=False),
                lambda: store.delete("alice", "s1"),
                lambda: store.load("alice", "s1"),
                lambda: store.append("alice", "s1", [message(2)], partial=False),
                lambda: store.load("alice", "s1"),
            )
            assert made == [0, True, [], 0, [message(2)]]
            info = await store.session("alice", "s1")
            assert info is not None and info.message_count == 1
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_history_that_cannot_be_read_fails_alone(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        try:
            await store.append("alice", "bad", [message(0)], partial=False)
            await store.append("alice", "good", [message(1)], partial=False)
            await store._file.run(
                lambda: store._file.db.execute("UPDATE messages SET message = x'00ff'")
            )
            made = await made_in_order(
                lambda: store.load("alice", "bad"),
                lambda: store.delete("alice", "good"),
                lambda: store.load("alice", "bad"),
                lambda: store.append("alice", "bad", [message(2)], partial=False),
                lambda: store.session("alice", "bad"),
            )
        finally:
            await store.aclose()
        assert isinstance(made[0], Exception) and isinstance(made[2], Exception)
        assert made[1] is True and made[3] == 0 and made[4].message_count == 2

    asyncio.run(main())


def test_a_closed_store_fails_its_calls_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "memory.sqlite3", 3600)
        await store.aclose()
        with pytest.raises(RuntimeError):
            await store.load("alice", "s1")

    asyncio.run(main())


@settings(max_examples=60, deadline=None)
@given(calls=session_calls.calls, together=st.integers(1, 16))
def test_calls_made_together_end_as_one_at_a_time(
    calls: list[tuple[Any, ...]], together: int
) -> None:
    """Loads and appends made in groups, sessions expiring between them: each call's
    outcome is the in-memory store's, one call at a time."""
    now = [1000.0]

    def open_store() -> SQLiteStore:
        return SQLiteStore(
            Path(IN_MEMORY),
            session_calls.TTL,
            clock=lambda: now[0],
            max_messages=session_calls.MAX_MESSAGES,
        )

    async def made_together(made: list[session_calls.Made]) -> list[Any]:
        return list(await asyncio.gather(*(call() for call in made)))

    asyncio.run(
        session_calls.check_calls_made_together(open_store, now, calls, together, made_together)
    )
