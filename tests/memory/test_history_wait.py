"""A request waits for its session's history at most STORE_WAIT_SECONDS, each wait
ended at its own deadline, by one timer for all the loads in flight (history_wait.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import pytest

from memory_proxy.config import MemorySettings
from memory_proxy.memory import conversation
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.records.messages import Message
from memory_proxy.stores.in_memory import InMemoryStore
from memory_proxy.wire.registry import CHAT

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
STORED: list[Message] = [
    {"role": "user", "content": "My name is Alice"},
    {"role": "assistant", "content": "Hello Alice"},
]


class HeldStore(InMemoryStore):
    """A store whose loads answer when the test says (`answer`), or never."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)
        self.loads: dict[str, asyncio.Future[list[Message]]] = {}

    def load(self, user_id: str, session_id: str) -> asyncio.Future[list[Message]]:  # type: ignore[override]
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self.loads[session_id] = future
        return future

    def answer(self, session_id: str) -> None:
        self.loads[session_id].set_result([m.copy() for m in STORED])


def memory_of(store: InMemoryStore, failures: list[str]) -> ConversationMemory:
    return ConversationMemory(store, MemorySettings(), on_failure=failures.append)


def counting_timers(loop: asyncio.AbstractEventLoop) -> list[float]:
    """The deadlines of the timers armed on `loop` from now on."""
    armed: list[float] = []
    call_at: Callable[..., Any] = loop.call_at

    def counted(when: float, *args: Any, **kwargs: Any) -> Any:
        armed.append(when)
        return call_at(when, *args, **kwargs)

    loop.call_at = counted  # type: ignore[method-assign,assignment]
    return armed


def test_fifty_loads_in_flight_arm_one_timer() -> None:
    """asyncio.timeout per load armed (and cancelled) a timer each: ~28k instructions a
    request on the event loop, as much as the load's hand-off to the store's thread."""

    async def main() -> None:
        store, failures = HeldStore(), list[str]()
        memory = memory_of(store, failures)
        armed = counting_timers(asyncio.get_running_loop())
        turns = [
            asyncio.ensure_future(memory.begin(CHAT, "alice", f"s{n}", BODY)) for n in range(50)
        ]
        await asyncio.sleep(0)  # every request now waits for its history
        for n in range(50):
            store.answer(f"s{n}")
        done = await asyncio.gather(*turns)
        assert [turn.injected for turn in done if turn is not None] == [2] * 50
        assert failures == []
        assert len(armed) == 1

    asyncio.run(main())


def test_a_history_that_does_not_come_in_time_is_gone_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The request goes on without memory at its deadline; the failure is counted as a
    load's; the load is cancelled (a store's queued load is then not run); a request
    waiting beside it gets its history."""
    monkeypatch.setattr(conversation, "STORE_WAIT_SECONDS", 0.05)

    async def main() -> None:
        store, failures = HeldStore(), list[str]()
        memory = memory_of(store, failures)
        loop = asyncio.get_running_loop()
        started = loop.time()
        late = asyncio.ensure_future(memory.begin(CHAT, "alice", "late", BODY))
        await asyncio.sleep(0.03)
        answered = asyncio.ensure_future(memory.begin(CHAT, "alice", "answered", BODY))
        later = asyncio.ensure_future(memory.begin(CHAT, "alice", "later", BODY))
        await asyncio.sleep(0)
        store.answer("answered")
        assert await late is None
        assert loop.time() - started >= 0.05
        assert failures == ["load"]
        assert store.loads["late"].cancelled()
        turn = await answered
        assert turn is not None and turn.injected == 2
        assert await later is None  # at its own deadline, not at the first one's
        assert loop.time() - started >= 0.08
        assert failures == ["load", "load"]

    asyncio.run(main())


def test_a_request_cancelled_while_waiting_is_cancelled_not_timed_out() -> None:
    async def main() -> None:
        store, failures = HeldStore(), list[str]()
        memory = memory_of(store, failures)
        waiting = asyncio.ensure_future(memory.begin(CHAT, "alice", "s1", BODY))
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert store.loads["s1"].cancelled()
        assert failures == []

    asyncio.run(main())


def test_a_store_whose_load_is_a_coroutine_is_bounded_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Redis's and the in-memory store's loads are coroutines, not futures."""
    monkeypatch.setattr(conversation, "STORE_WAIT_SECONDS", 0.05)

    class Hanging(InMemoryStore):
        async def load(self, user_id: str, session_id: str) -> list[Message]:
            await asyncio.Event().wait()
            return []

    async def main() -> None:
        failures: list[str] = []
        memory = memory_of(Hanging(60), failures)
        assert await memory.begin(CHAT, "alice", "s1", BODY) is None
        assert failures == ["load"]
        stored = memory_of(InMemoryStore(60), failures)
        await stored.store.append("alice", "s1", STORED, partial=False)
        turn = await stored.begin(CHAT, "alice", "s1", BODY)
        assert turn is not None and turn.injected == 2

    asyncio.run(main())


def test_a_memory_served_by_a_second_loop_still_bounds_its_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A proxy stopped with a load in flight and served again (a new event loop): the
    first loop's timer never fires, so the second arms its own."""
    monkeypatch.setattr(conversation, "STORE_WAIT_SECONDS", 0.05)
    store, failures = HeldStore(), list[str]()
    memory = memory_of(store, failures)

    async def stopped_while_waiting() -> None:
        waiting = asyncio.ensure_future(memory.begin(CHAT, "alice", "s1", BODY))
        await asyncio.sleep(0)
        waiting.cancel()  # the first loop's timer stays armed, and that loop closes
        with contextlib.suppress(asyncio.CancelledError):
            await waiting

    async def again() -> None:
        async with asyncio.timeout(5):  # not forever, were no timer armed
            assert await memory.begin(CHAT, "alice", "s2", BODY) is None

    asyncio.run(stopped_while_waiting())
    asyncio.run(again())
    assert failures == ["load"]
