"""The watch that ends a forwarded request: its own cancellations, told apart from anyone
else's, and no cost for a quick request. The watchdog runs on a clock the tests move by
hand: no test waits for its real 50 ms ticks."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

import pytest
from starlette.types import Message

from memory_proxy.forwarding.request_watch import TICK_SECONDS, RequestWatch, Watchdog


class ManualClock:
    """The watchdog's `Clock`, standing still until `advance` moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[[], None]) -> object:
        heapq.heappush(self._due, (self.now + delay, next(self._order), callback))
        return None

    async def advance(self, seconds: float) -> None:
        """Move on by `seconds`, running each callback at its time and letting the tasks
        it woke take their next steps."""
        end = self.now + seconds
        while self._due and self._due[0][0] <= end:
            self.now, _, callback = heapq.heappop(self._due)
            callback()
            await settle()
        self.now = end
        await settle()


async def settle() -> None:
    """Let the tasks that are ready run until they wait again (a few loop turns)."""
    for _ in range(5):
        await asyncio.sleep(0)


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
        clock = ManualClock()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10, clock=clock)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await settle()  # the request has begun: its watch is on
        await clock.advance(TICK_SECONDS / 10)
        work.set_result(None)
        _, ended = await request
        await clock.advance(10 * TICK_SECONDS)
        return ended, len(calls), len(watchdog.active)

    assert asyncio.run(scenario()) == ("done", 0, 0)


def test_a_client_leaving_a_long_request_ends_it() -> None:
    async def scenario() -> tuple[int, int, str]:
        calls: list[None] = []
        leave = asyncio.Event()
        clock = ManualClock()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10, clock=clock)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await settle()  # the request has begun: its watch is on
        await clock.advance(TICK_SECONDS)
        at_first_tick = len(calls)
        await clock.advance(TICK_SECONDS)  # the listener starts at the second tick
        at_second_tick = len(calls)
        leave.set()
        _, ended = await request
        return at_first_tick, at_second_tick, ended

    assert asyncio.run(scenario()) == (0, 1, "client_disconnected")


def test_silence_past_the_timeout_ends_it_and_activity_keeps_it_going() -> None:
    async def scenario() -> tuple[bool, str, float]:
        calls: list[None] = []
        leave = asyncio.Event()
        clock = ManualClock()
        timeout = 4 * TICK_SECONDS
        watchdog = Watchdog(first_byte_timeout=timeout, idle_timeout=timeout, clock=clock)
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await settle()
        (watch,) = watchdog.active
        watch.answered()
        for _ in range(20):  # activity for two and a half times the idle timeout
            watch.activity()
            await clock.advance(TICK_SECONDS / 2)
        kept_going = not request.done()
        silent_since = clock.now
        while not request.done():  # then silence
            await clock.advance(TICK_SECONDS)
        _, ended = await request
        return kept_going, ended, clock.now - silent_since

    kept_going, ended, silence = asyncio.run(scenario())
    assert (kept_going, ended) == (True, "upstream_timeout")
    # Noticed within two ticks of the timeout.
    assert 4 * TICK_SECONDS <= silence <= 6 * TICK_SECONDS


def test_a_cancellation_from_elsewhere_is_not_taken_for_the_watchs_own() -> None:
    """A server shutting down cancels the request: that must propagate."""

    async def scenario() -> None:
        calls: list[None] = []
        leave = asyncio.Event()
        watchdog = Watchdog(first_byte_timeout=10, idle_timeout=10, clock=ManualClock())
        work = asyncio.get_running_loop().create_future()
        request = asyncio.ensure_future(watched(watchdog, work, leave, calls))
        await asyncio.sleep(0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        assert not watchdog.active

    asyncio.run(scenario())
