"""PostgresStore's loads and appends are queued for one thread, and those queued together
run together: histories read by one statement, appends written by one, every call seeing
the ones made before it; a failing append fails alone; a broken connection is replaced."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.records.messages import Message
from memory_proxy.stores.postgres_sessions import PostgresStore
from tests.postgres_support import PostgresServer
from tests.stores import session_calls_support as session_calls
from tests.stores.session_calls_support import made_in_order, message


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements psycopg's cursors execute (either kind) from now on."""
    executed: list[str] = []
    sync_execute, async_execute = psycopg.Cursor.execute, psycopg.AsyncCursor.execute

    def counted(cursor: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        executed.append(str(query))
        return sync_execute(cursor, query, *args, **kw)

    async def counted_async(
        cursor: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kw: Any
    ) -> Any:
        executed.append(str(query))
        return await async_execute(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.Cursor, "execute", counted)
    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted_async)
    return executed


def _reading(executed: list[str]) -> list[str]:
    return [s for s in executed if "SELECT" in s and "m.message" in s]


def _appending(executed: list[str]) -> list[str]:
    return [s for s in executed if "memory_proxy_append(" in s]


def test_histories_asked_for_together_are_read_by_one_statement(
    postgres_url: str, statements: list[str]
) -> None:
    async def main() -> None:
        store = PostgresStore(postgres_url, 3600)
        try:
            for n in range(20):
                await store.append("alice", f"s{n}", [message(n), message(n + 1)], partial=False)
            await store.append("bob", "s0", [message(99)], partial=False)
            statements.clear()
            keys = [("alice", f"s{n}") for n in range(20)] + [("bob", "s0"), ("bob", "none")]
            histories = await asyncio.gather(*(store.load(*key) for key in keys))
            assert len(_reading(statements)) == 1  # 22, one per history, before
            assert histories == [[message(n), message(n + 1)] for n in range(20)] + [
                [message(99)],
                [],
            ]
        finally:
            await store.aclose()

    asyncio.run(main())


def test_appends_made_together_are_one_statement_in_order(
    postgres_url: str, statements: list[str]
) -> None:
    async def main() -> None:
        store = PostgresStore(postgres_url, 3600, max_messages=3)
        try:
            await store.load("alice", "warm")  # the thread's connection opened
            statements.clear()
            dropped = await asyncio.gather(
                *(
                    store.append(
                        "alice", f"s{n % 3}", [message(n), message(n + 100)], partial=False
                    )
                    for n in range(12)
                )
            )
            assert len(_appending(statements)) == 1  # 12, one per append, before
            assert dropped == [0, 0, 0] + [1, 1, 1] + [2] * 6
            for s in range(3):  # the newest three messages, in the order they came
                kept = [message(s + 106), message(s + 9), message(s + 109)]
                assert await store.load("alice", f"s{s}") == kept
        finally:
            await store.aclose()

    asyncio.run(main())


def test_each_call_sees_the_calls_made_before_it(postgres_url: str, statements: list[str]) -> None:
    """As requests end and begin under load: appends and loads of a few sessions made
    together; a load sees the appends before it and none after."""

    async def main() -> None:
        store = PostgresStore(postgres_url, 3600)
        try:
            await store.load("alice", "warm")
            statements.clear()
            made: list[Awaitable[Any]] = []
            for n in range(20):
                made.append(store.append("alice", f"s{n % 4}", [message(n)], partial=False))
                made.append(store.load("alice", f"s{n % 4}"))
            outcomes = await asyncio.gather(*made)
            assert outcomes[1::2] == [
                [message(k) for k in range(n % 4, n + 1, 4)] for n in range(20)
            ]
            assert len(_reading(statements)) + len(_appending(statements)) < 40
        finally:
            await store.aclose()

    asyncio.run(main())


def test_an_append_that_fails_fails_alone(postgres_url: str) -> None:
    """A session id PostgreSQL cannot hold (a NUL) fails its own append; the others made
    with it are written."""

    async def main() -> None:
        store = PostgresStore(postgres_url, 3600)
        try:
            made = await made_in_order(
                lambda: store.append("alice", "a", [message(1)], partial=False),
                lambda: store.append("alice", "b\x00", [message(2)], partial=False),
                lambda: store.append("alice", "c", [message(3)], partial=False),
                lambda: store.load("alice", "a"),
            )
            assert made[0] == 0 and made[2] == 0 and made[3] == [message(1)]
            assert isinstance(made[1], psycopg.DataError)
            assert await store.load("alice", "c") == [message(3)]
        finally:
            await store.aclose()

    asyncio.run(main())


def test_a_broken_connection_is_replaced(postgres_url: str) -> None:
    """Its server process ended (as by a restart): a history is read again at once on a
    new connection; an append fails (its caller counts it), the next one is written."""

    async def main() -> None:
        store = PostgresStore(postgres_url, 3600)
        try:
            await store.append("alice", "s1", [message(1)], partial=False)
            await _end_other_sessions(postgres_url)
            assert await store.load("alice", "s1") == [message(1)]
            await _end_other_sessions(postgres_url)
            with pytest.raises(psycopg.OperationalError):
                await store.append("alice", "s1", [message(2)], partial=False)
            await store.append("alice", "s1", [message(3)], partial=False)
            assert await store.load("alice", "s1") == [message(1), message(3)]
        finally:
            await store.aclose()

    asyncio.run(main())


async def _end_other_sessions(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as db:
        await db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls=session_calls.calls, together=st.integers(1, 16))
def test_calls_made_together_end_as_one_at_a_time(
    postgres_server: PostgresServer, calls: list[tuple[Any, ...]], together: int
) -> None:
    """Loads and appends made in groups, sessions expiring between them: each call's
    outcome is the in-memory store's, one call at a time."""
    now = [1000.0]
    url = postgres_server.schema_url()

    def open_store() -> PostgresStore:
        return PostgresStore(
            url, session_calls.TTL, clock=lambda: now[0], max_messages=session_calls.MAX_MESSAGES
        )

    asyncio.run(
        session_calls.check_calls_made_together(
            open_store, now, calls, together, lambda made: made_in_order(*made)
        )
    )


def test_a_short_message_is_stored_as_its_json_and_a_long_one_packed(postgres_url: str) -> None:
    """As in the SQLite file (packed_text.py): deflating a message of a few hundred bytes
    costs as much as a 1 kB one, and inflating it again at each read."""
    short: Message = {"role": "user", "content": "where is staging? " * 5}
    long: Message = {"role": "assistant", "content": "staging is the second cluster. " * 40}

    async def main() -> None:
        store = PostgresStore(postgres_url, 3600)
        try:
            await store.append("alice", "short-and-long", [short, long], partial=False)
            assert await store.load("alice", "short-and-long") == [short, long]
        finally:
            await store.aclose()

    asyncio.run(main())
    with psycopg.connect(postgres_url) as db:
        rows = db.execute(
            "SELECT message FROM messages WHERE session_id = 'short-and-long' ORDER BY id"
        ).fetchall()
    assert bytes(rows[0][0]) == orjson.dumps(short)
    assert bytes(rows[1][0])[:1] != b"{" and len(rows[1][0]) < len(orjson.dumps(long))
