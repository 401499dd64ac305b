"""Every session store behind the one interface: same behaviour, checked the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.records.messages import Message
from memory_proxy.stores.base import MemoryStore
from memory_proxy.stores.in_memory import InMemoryStore
from memory_proxy.stores.postgres_sessions import PostgresStore
from memory_proxy.stores.redis import RedisStore
from memory_proxy.stores.sqlite import SQLiteStore
from tests.support import RedisServer


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MAX_MESSAGES = 6  # memory.max_session_messages


def make_store(kind: str, tmp_path: Path, clock: Clock, url: str) -> MemoryStore:
    if kind == "memory":
        return InMemoryStore(60, clock, MAX_MESSAGES)
    if kind == "redis":
        return RedisStore(url, 60, clock, MAX_MESSAGES)
    if kind == "postgres":
        return PostgresStore(url, 60, clock, MAX_MESSAGES)
    return SQLiteStore(tmp_path / "memory.sqlite3", 60, clock, MAX_MESSAGES)


Scenario = Callable[[MemoryStore, Clock], Coroutine[Any, Any, None]]


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[Scenario], None]]:
    redis = RedisServer() if request.param == "redis" else None
    url = redis.url if redis else ""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            clock = Clock()
            store = make_store(request.param, tmp_path, clock, url)
            try:
                await scenario(store, clock)
            finally:
                await store.aclose()

        asyncio.run(main())

    yield runner
    if redis is not None:
        redis.kill()


USER: Message = {"role": "user", "content": "hi"}
ANSWER: Message = {"role": "assistant", "content": "hello"}


def test_append_then_load_in_order(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: MemoryStore, clock: Clock) -> None:
        await store.append("alice", "s1", [USER, ANSWER], partial=False)
        await store.append("alice", "s1", [USER], partial=False)
        assert await store.load("alice", "s1") == [USER, ANSWER, USER]
        info = await store.session("alice", "s1")
        assert info is not None and info.message_count == 3

    run(scenario)


def test_a_session_keeps_its_newest_messages_and_says_how_many_went(
    run: Callable[[Scenario], None],
) -> None:
    said: list[Message] = [{"role": "user", "content": f"message {n}"} for n in range(10)]

    async def scenario(store: MemoryStore, clock: Clock) -> None:
        assert await store.append("alice", "long", said[:4], partial=False) == 0
        assert await store.append("alice", "long", said[4:7], partial=False) == 1
        assert await store.append("alice", "long", said[7:], partial=False) == 3
        assert await store.load("alice", "long") == said[-MAX_MESSAGES:]
        info = await store.session("alice", "long")
        assert info is not None and info.message_count == MAX_MESSAGES
        assert await store.append("alice", "other", said[:2], partial=False) == 0

    run(scenario)


def test_users_are_isolated(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: MemoryStore, clock: Clock) -> None:
        await store.append("alice", "shared", [USER], partial=False)
        assert await store.load("bob", "shared") == []
        assert await store.delete("bob", "shared") is False
        assert await store.load("alice", "shared") == [USER]

    run(scenario)


def test_partial_answers_are_marked(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: MemoryStore, clock: Clock) -> None:
        await store.append("alice", "s1", [USER, ANSWER], partial=True)
        assert await store.load("alice", "s1") == [USER, {**ANSWER, "partial": True}]

    run(scenario)


def test_sessions_expire_after_the_ttl_of_inactivity(
    run: Callable[[Scenario], None], request: pytest.FixtureRequest
) -> None:
    if "redis" in request.node.name:
        pytest.skip("Redis expires keys on its own clock: see test_redis_expires_sessions")

    async def scenario(store: MemoryStore, clock: Clock) -> None:
        await store.append("alice", "old", [USER], partial=False)
        clock.now += 50
        await store.append("alice", "active", [USER], partial=False)
        clock.now += 20  # "old" idle 70 s > ttl 60; "active" idle 20 s
        assert await store.load("alice", "old") == []
        assert [s.session_id for s in await store.list_sessions("alice", 10, 0)] == ["active"]
        assert await store.purge_expired() == 1
        await store.append("alice", "old", [ANSWER], partial=False)
        assert await store.load("alice", "old") == [ANSWER]  # a fresh session, not the stale one

    run(scenario)


def test_list_delete_and_pages(run: Callable[[Scenario], None]) -> None:
    async def scenario(store: MemoryStore, clock: Clock) -> None:
        for index in range(5):
            clock.now += 1
            await store.append("alice", f"s{index}", [USER], partial=False)
        await store.append("bob", "b1", [USER], partial=False)
        page = await store.list_sessions("alice", 2, 1)
        assert [s.session_id for s in page] == ["s3", "s2"]
        assert len(await store.list_sessions(None, 100, 0)) == 6
        assert await store.delete("alice", "s3") is True
        assert await store.session("alice", "s3") is None

    run(scenario)


def test_sqlite_survives_reopening(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        first = SQLiteStore(tmp_path / "m.sqlite3", 60, clock)
        await first.append("alice", "s1", [USER, ANSWER], partial=False)
        await first.aclose()
        second = SQLiteStore(tmp_path / "m.sqlite3", 60, clock)
        assert await second.load("alice", "s1") == [USER, ANSWER]
        await second.aclose()

    asyncio.run(main())


def test_redis_expires_sessions(redis_server: RedisServer) -> None:
    async def main() -> None:
        store = RedisStore(redis_server.url, 1)
        await store.append("alice", "s1", [USER], partial=False)
        assert await store.load("alice", "s1") == [USER]

        async def gone() -> bool:
            return (
                await store.load("alice", "s1") == [] and await store.session("alice", "s1") is None
            )

        for _ in range(300):  # Redis expires within its 1 s TTL (+ up to 1 s of granularity)
            if await gone():
                break
            await asyncio.sleep(0.01)
        assert await gone()
        await store.aclose()

    asyncio.run(main())
