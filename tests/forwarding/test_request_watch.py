"""The watch that ends a forwarded request: its own cancellations, told apart from anyone
else's, and no cost for a quick request."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from memory_proxy.forwarding.request_watch import TICK_SECONDS, RequestWatch, Watchdog


async def watched(
    watchdog: Watchdog, work: asyncio.Future[None], leave: asyncio.Event, calls: list[None]
) -> tuple[RequestWatch, str]:
    """A request waiting for `work`, as the forwarder runs it; its client's `receive`
    records each call and says http.disconnect once `leave` is set."""

    async def receive() -> Message:
        calls.append(None)
        await leave.wait()
        return {"type": "http.disconnect"}

    watch = watchdog.watch(receive, listen=True)
    try:
        await work
        return watch, "done"
    except asyncio.CancelledError:
        if not watch.ended_this():
            raise
        return watch, str(watch.reason)
    finally:
        watch.close()


def test_a_quick_request_never_listens_for_the_client() -> None:
    async def scenario() -> tuple[str, int, int]:
        calls: list[None] = []
        leave = asyncio.Event()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10)
        work = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(TICK_SECONDS / 10, work.set_result, None)
        _, ended = await watched(watchdog, work, leave, calls)
        return ended, len(calls), len(watchdog.active)

    assert asyncio.run(scenario()) == ("done", 0, 0)


def test_a_client_leaving_a_long_request_ends_it() -> None:
    async def scenario() -> str:
        calls: list[None] = []
        leave = asyncio.Event()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        while not calls:  # the listener starts once the request has lasted a while
            await asyncio.sleep(TICK_SECONDS)
        leave.set()
        _, ended = await request
        return ended

    assert asyncio.run(scenario()) == "client_disconnected"


def test_silence_past_the_timeout_ends_it_and_activity_keeps_it_going() -> None:
    async def scenario() -> tuple[str, int]:
        calls: list[None] = []
        leave = asyncio.Event()
        watchdog = Watchdog(first_byte_timeout=4 * TICK_SECONDS, idle_timeout=4 * TICK_SECONDS)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await asyncio.sleep(0)
        (watch,) = watchdog.active
        watch.answered()
        beats = 0
        while beats < 20:  # activity for five times the idle timeout
            watch.activity()
            beats += 1
            await asyncio.sleep(TICK_SECONDS / 2)
        _, ended = await request  # then silence
        return ended, beats

    assert asyncio.run(scenario()) == ("upstream_timeout", 20)


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_watchs_own() -> None:
    """A server shutting down cancels the request: that must propagate."""

    async def scenario() -> None:
        calls: list[None] = []
        leave = asyncio.Event()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await asyncio.sleep(0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not watchdog.active

    asyncio.run(scenario())
