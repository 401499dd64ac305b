"""Conversation memory when its store fails: the request goes on without, and what failed
is counted, by operation, and logged once (a history not loaded, an exchange not kept,
a store down and back, exchanges unfinished when the proxy stops)."""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from memory_proxy.records.messages import Message
from memory_proxy.stores.base import STORE_OPERATIONS, MemoryStore
from memory_proxy.stores.in_memory import InMemoryStore
from tests.fake_upstream import FakeUpstream
from tests.memory.conversation_support import (
    ALICE,
    chat,
    redis_settings,
    sent_messages,
    store_errors,
    store_errors_by_operation,
    stored_count,
)
from tests.support import RedisServer, serve, wait_until


def replace_store(app: MemoryProxy, store: MemoryStore) -> None:
    """`store` in place of the app's session store, the replaced one closed: the app
    closes only the store it holds when it stops, and the SQLite store it opened, left
    open, kept its thread ("sqlite") and its file to the end of the test run."""
    assert app.memory is not None
    replaced = app.memory.conversations.store
    app.memory.conversations.store = store
    asyncio.run(replaced.aclose())


class BrokenStore(InMemoryStore):
    """A store that is down: every read and write fails."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        raise ConnectionError("store is down")

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        raise ConnectionError("store is down")


def test_a_failing_store_never_fails_the_llm_call(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    replace_store(app, BrokenStore())
    with serve(app) as proxy:
        assert "Hello" in chat(proxy, "hi", ALICE)
        wait_until(lambda: store_errors(app) == 1)
    assert sent_messages(upstream, 0) == ["hi"]


class RefusingStore(InMemoryStore):
    """A store that reads but refuses every write."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        raise ConnectionError("read-only")


def test_a_failed_load_and_a_refused_write_are_counted_apart(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    """memory_proxy_memory_store_errors_total{operation}: a history that could not be
    read and an exchange that could not be kept are told apart; their sum is the total,
    and every operation's series is there from the start."""
    _, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    assert app.memory is not None
    assert store_errors_by_operation(app) == dict.fromkeys(STORE_OPERATIONS, 0.0)
    with serve(app) as proxy:
        replace_store(app, BrokenStore())
        chat(proxy, "hi", ALICE)
        wait_until(lambda: store_errors(app) == 1)
        replace_store(app, RefusingStore())
        chat(proxy, "hi again", ALICE)
        wait_until(lambda: store_errors(app) == 2)
    assert store_errors_by_operation(app) == dict.fromkeys(STORE_OPERATIONS, 0.0) | {
        "load": 1.0,
        "append": 1.0,
    }


class HangingStore(InMemoryStore):
    """A store that takes a write and never finishes it."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)
        self.writes = 0

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        self.writes += 1
        await asyncio.Event().wait()  # never set
        return 0


def test_exchanges_not_stored_when_the_proxy_stops_are_counted_and_logged_once(
    fake_upstream: tuple[FakeUpstream, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The store is given a grace to finish what it was writing (5 s; here less), and
    what it had not finished then is counted as appends that failed, not lost silently."""
    _, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    assert app.memory is not None
    store = HangingStore()
    replace_store(app, store)
    app.memory.conversations.shutdown_grace = 0.05
    with serve(app) as proxy:
        chat(proxy, "hi", ALICE)
        chat(proxy, "hi again", {**ALICE, "x-session-id": "conv-2"})
        wait_until(lambda: store.writes == 2)
    assert store_errors_by_operation(app)["append"] == 2
    assert caplog.text.count("not stored") == 1
    assert "2 exchange(s) not stored" in caplog.text


def test_redis_down_degrades_memory_and_its_return_restores_it(
    fake_upstream: tuple[FakeUpstream, str], redis_server: RedisServer
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(redis_settings(url, redis_server.url))
    with serve(app) as proxy:
        chat(proxy, "before", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        redis_server.kill()
        chat(proxy, "while down", ALICE)  # answered, without memory
        assert store_errors(app) >= 1
        listing = httpx.get(f"{proxy}/v1/sessions", headers=ALICE)
        assert listing.status_code == 503
        assert listing.json()["error"]["message"] == "the memory store is unavailable"
        usage = httpx.get(f"{proxy}/v1/usage", headers=ALICE)
        assert (usage.status_code, usage.json()["error"]["message"]) == (
            503,
            "the usage store is unavailable",
        )
        revived = RedisServer(port=redis_server.port)  # empty: the old data died with it
        try:
            chat(proxy, "after", ALICE)
            wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
            chat(proxy, "again", ALICE)
        finally:
            revived.kill()
    assert sent_messages(upstream, 1) == ["while down"]
    assert sent_messages(upstream, 3) == ["after", upstream.reply_text, "again"]
