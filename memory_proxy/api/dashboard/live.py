"""`GET /v1/live`: server-sent events for the dashboard's live view. First a `request`
event for each of the latest BACKLOG usage records (oldest first), so that the view is
not empty until the next request; then a `state` event (requests in flight) every second,
and a `request` event per usage record as it is made. A caller whose key is bound to a
user id sees that user's requests only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from memory_proxy.accounting.live import LiveFeed, Subscription
from memory_proxy.accounting.usage import UsageRecorder
from memory_proxy.api.caller import caller_of
from memory_proxy.errors import error_response
from memory_proxy.logging_setup import log_failure
from memory_proxy.records.usage import UsageRecord

logger = logging.getLogger("memory_proxy.live")

STATE_EVERY_SECONDS = 1.0
BACKLOG = 50


class LiveAPI:
    def __init__(self, feed: LiveFeed, recorder: UsageRecorder | None) -> None:
        self._feed = feed
        self._recorder = recorder

    async def events(self, request: Request) -> Response:
        caller = caller_of(request)
        if not caller.authenticated:
            return error_response(
                request.url.path, 401, "live needs one of the proxy's client keys"
            )
        return StreamingResponse(
            self._stream(caller.bound_user_id),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    async def _stream(self, only_user: str | None) -> AsyncIterator[bytes]:
        with self._feed.subscribe() as subscription:
            yield b"retry: 2000\n\n"
            backlog = await self._backlog(only_user)
            for record in backlog:
                yield _event("request", record.as_dict())
            # Published after subscribing and written before the backlog was read: sent.
            sent = {record.request_id for record in backlog}
            while True:
                yield _event("state", {"in_flight": self._feed.in_flight()})
                async for record in _for_a_while(subscription, STATE_EVERY_SECONDS):
                    if record.request_id in sent:
                        sent.discard(record.request_id)
                    elif only_user is None or record.user_id == only_user:
                        yield _event("request", record.as_dict())

    async def _backlog(self, only_user: str | None) -> list[UsageRecord]:
        """The latest records, those still queued for the log included; none when usage
        is off or the log fails (the live events go on)."""
        if self._recorder is None:
            return []
        try:
            await self._recorder.written()
            return await self._recorder.log.latest(BACKLOG, only_user)
        except Exception as exc:
            log_failure(logger, "usage store failed (the live view starts empty)", exc)
            return []


async def _for_a_while(subscription: Subscription, seconds: float) -> AsyncIterator[UsageRecord]:
    """The records that arrive within `seconds` (never yielding inside the timeout, which
    would cancel whoever is consuming)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            async with asyncio.timeout(left):
                record = await subscription.queue.get()
        except TimeoutError:
            return
        yield record


def _event(name: str, data: object) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
