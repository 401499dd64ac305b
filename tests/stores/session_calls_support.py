"""A session store's batched calls checked against the in-memory store: the calls are
made in groups (each group together, the clock moving on between some), and each call's
outcome must be the one it has when the calls are made one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from hypothesis import strategies as st

from memory_proxy.records.messages import Message
from memory_proxy.stores.in_memory import InMemoryStore

TTL = 100
MAX_MESSAGES = 5

calls = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.sampled_from(["alice", "bob"]),
            st.sampled_from(["a", "b"]),
            st.integers(0, 4),
        ),
        st.tuples(st.just("load"), st.sampled_from(["alice", "bob"]), st.sampled_from(["a", "b"])),
        st.tuples(st.just("later"), st.integers(1, 150)),  # the clock moves on (past TTL)
    ),
    min_size=1,
    max_size=24,
)

Made = Callable[[], Awaitable[Any]]


def message(n: int) -> Message:
    return {"role": "user" if n % 2 == 0 else "assistant", "content": f"message {n}"}


async def made_in_order(*calls: Made) -> list[Any]:
    """Each call made (its coroutine started) before the next, none awaited meanwhile;
    their outcomes (an exception for a call that raised)."""
    started = []
    for call in calls:
        started.append(asyncio.ensure_future(call()))
        await asyncio.sleep(0)
    return await asyncio.gather(*started, return_exceptions=True)


async def check_calls_made_together(
    open_store: Callable[[], Any],
    now: list[float],
    calls: list[tuple[Any, ...]],
    together: int,
    make_group: Callable[[list[Made]], Awaitable[list[Any]]],
) -> None:
    """The store `open_store` opens (its clock reading `now[0]`, its TTL and
    MAX_MESSAGES these), made `calls` in groups of at most `together` (a "later" call
    starts a group), each group by `make_group`."""
    store = open_store()
    reference = InMemoryStore(TTL, clock=lambda: now[0], max_messages=MAX_MESSAGES)
    try:
        groups: list[list[tuple[Any, ...]]] = [[]]
        for call in calls:
            if call[0] == "later" or len(groups[-1]) == together:
                groups.append([])
            groups[-1].append(call)
        for number, group in enumerate(groups):
            if group and group[0][0] == "later":
                now[0] += group.pop(0)[1]
            outcomes = await make_group([_made(store, call, number) for call in group])
            assert list(outcomes) == [await _made(reference, call, number)() for call in group]
    finally:
        await store.aclose()
        await reference.aclose()


def _made(store: Any, call: tuple[Any, ...], group: int) -> Made:
    if call[0] == "load":
        return lambda: store.load(call[1], call[2])
    messages = [message(group * 10 + n) for n in range(call[3])]
    return lambda: store.append(call[1], call[2], messages, partial=False)
