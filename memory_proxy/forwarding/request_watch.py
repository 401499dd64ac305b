"""Ends a forwarded request that nobody waits for any more, or that the upstream leaves
hanging: the client hung up, no answer began within the first-byte timeout, or the answer
paused longer than the idle timeout. The forwarding task is cancelled, the way
`asyncio.timeout` does it, and learns from `reason` why.

Cheap on purpose, as every request pays for it: one timer for all requests in flight
(`Watchdog`, ticking every `TICK_SECONDS` while there are any; a timer per request cost
5-8 µs under uvloop), activity just counted, and the task that listens for the client
leaving started only for a request still running at its second tick (50-100 ms old), so
quick answers never create it. Timeouts and a departure are noticed within a tick or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal, Protocol

from starlette.types import Receive

TICK_SECONDS = 0.05

Reason = Literal["client_disconnected", "upstream_timeout"]


class Clock(Protocol):
    """What the watchdog needs of time: the running event loop's, or a test's own that it
    moves forward by hand (no test waits for real ticks)."""

    def time(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> object: ...


class Watchdog:
    """The timer behind every `RequestWatch` of one forwarder. `clock`: the running
    loop's unless given."""

    def __init__(
        self, *, first_byte_timeout: float, idle_timeout: float, clock: Clock | None = None
    ) -> None:
        self.first_byte_timeout = first_byte_timeout
        self.idle_timeout = idle_timeout
        self.active: set[RequestWatch] = set()
        self._clock = clock
        self._timer: object | None = None

    def watch(self, receive: Receive, *, listen: bool) -> RequestWatch:
        """Watch the current task's request until the watch is closed. `listen`: whether
        `receive` is free now (False while a streamed request body is still read from it;
        `upload_done` says when it is)."""
        watch = RequestWatch(self, receive, listen)
        self.active.add(watch)
        if self._timer is None:
            self._timer = self._time().call_later(TICK_SECONDS, self._tick)
        return watch

    def _time(self) -> Clock:
        return self._clock or asyncio.get_running_loop()

    def _tick(self) -> None:
        clock = self._time()
        now = clock.time()
        for watch in list(self.active):
            watch.check(now)
        self._timer = clock.call_later(TICK_SECONDS, self._tick) if self.active else None


class RequestWatch:
    """One request's watch; `close` it when the request is done."""

    __slots__ = (
        "_activity",
        "_last",
        "_limit",
        "_listen_due",
        "_listener",
        "_may_listen",
        "_receive",
        "_seen_activity",
        "_watchdog",
        "reason",
        "task",
    )

    def __init__(self, watchdog: Watchdog, receive: Receive, listen: bool) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.reason: Reason | None = None
        self._watchdog = watchdog
        self._receive = receive
        self._limit = watchdog.first_byte_timeout  # silence allowed since `_last`
        self._last: float | None = None  # set at the first tick
        self._activity = 0
        self._seen_activity = 0
        self._may_listen = listen
        self._listen_due = False
        self._listener: asyncio.Task[None] | None = None

    def answered(self) -> None:
        """The answer's head arrived: from now on, silence is bounded by the idle timeout."""
        self._limit = self._watchdog.idle_timeout
        self._activity += 1

    def activity(self) -> None:
        """A piece of the answer arrived."""
        self._activity += 1

    def upload_done(self) -> None:
        """The streamed request body was read: `receive` may be listened to."""
        self._may_listen = True
        self._start_listening()

    def close(self) -> None:
        self._watchdog.active.discard(self)
        if self._listener is not None:
            self._listener.cancel()

    def ended_this(self) -> bool:
        """Whether the cancellation being handled is this watch's own (and nobody else's,
        such as a server shutting down): call once, from `except CancelledError`."""
        return self.reason is not None and self.task.uncancel() == 0

    def check(self, now: float) -> None:
        """At a tick of the watchdog."""
        if self._last is None:  # the first tick: the request is 0-50 ms old
            self._last = now
            return
        self._listen_due = True
        self._start_listening()
        if self._activity != self._seen_activity:
            self._seen_activity = self._activity
            self._last = now
        elif now - self._last >= self._limit:
            self._end("upstream_timeout")

    def _start_listening(self) -> None:
        if (
            self._listen_due
            and self._may_listen
            and self._listener is None
            and self in self._watchdog.active
        ):
            self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self._end("client_disconnected")

    def _end(self, reason: Reason) -> None:
        if self.reason is None and self in self._watchdog.active:
            self.reason = reason
            self.task.cancel()
