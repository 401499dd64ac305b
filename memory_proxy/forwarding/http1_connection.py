"""One keep-alive HTTP/1.1 connection of the lean client (http1_client.py): the request
written with flow control, the answer parsed by httptools and its body handed over chunk by
chunk, reading paused while the caller lags.

It knows whether its answer was read to the end by the caller — the only state in which
it may carry another request — and refuses answers it must not pass on: an oversized
head, bytes beyond the end of the answer.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools

from memory_proxy.errors import (
    StaleConnection,
    UpstreamClosed,
    UpstreamError,
    UpstreamProtocolError,
)

HIGH_WATER_BYTES = 1024 * 1024  # unread body held before reading from the socket pauses
MAX_ANSWER_HEAD_BYTES = 64 * 1024  # status line and headers; more is refused (nginx: 4-32 KiB)
_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding"})


class Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self, on_lost: Callable[[Connection], None]) -> None:
        self._on_lost = on_lost
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[int] | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None
        self._in_head = False  # the final answer's head has not been parsed yet
        self._head_bytes = 0  # received while in the head
        self._header_bytes = 0
        self._answered = False  # a byte of the answer arrived
        self._complete = False  # the whole answer arrived
        self._read_to_end = False  # ... and the caller read all of it
        self._interim = False
        self._keep_alive = False
        self._ends_at_close = False
        self._framed = False  # the head gave a Content-Length or Transfer-Encoding
        self._error: UpstreamError | None = None
        self.requests = 0
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._answered = True
        if self._in_head:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
            if self._in_head and self._head_bytes > MAX_ANSWER_HEAD_BYTES:
                raise UpstreamProtocolError(f"head larger than {MAX_ANSWER_HEAD_BYTES} bytes")
        except (httptools.HttpParserError, UpstreamProtocolError) as exc:
            # A callback's refusal reaches us as the parser's error, with ours as its context.
            refused = exc.__context__ if isinstance(exc.__context__, UpstreamProtocolError) else exc
            self._fail(UpstreamProtocolError(f"invalid answer from upstream: {refused}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._on_lost(self)
        if self._ends_at_close and exc is None:
            self.on_message_complete()  # RFC 9112 6.3: no length given, the close ends it
        elif not self._complete and self.requests > 1 and not self._answered:
            stale = StaleConnection("upstream closed a kept-alive connection before answering")
            self._fail(stale, cause=exc)
        elif not self._complete:
            self._fail(UpstreamClosed("upstream closed the connection"), cause=exc)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # httptools callbacks
    def on_message_begin(self) -> None:
        if self._complete:
            raise UpstreamProtocolError("bytes after the end of the answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()  # once, here: every reader of the answer's headers wants it
        self._headers.append((name, value))
        self._header_bytes += len(name) + len(value)
        if name in _FRAMING_HEADERS:
            self._framed = True

    def on_headers_complete(self) -> None:
        if self._header_bytes > MAX_ANSWER_HEAD_BYTES:
            raise UpstreamProtocolError(f"headers larger than {MAX_ANSWER_HEAD_BYTES} bytes")
        status = self._parser.get_status_code()
        if status < 200:  # "100 Continue" and other interim answers: the real one follows
            self._interim = True
            return
        self._in_head = False
        # Asked now: the parser forgets it once the message is complete.
        self._keep_alive = self._parser.should_keep_alive()
        self._ends_at_close = not self._framed
        if self._head is not None and not self._head.done():
            self._head.set_result(status)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER_BYTES and self._transport is not None:
            self._transport.pause_reading()
        self._wake_reader()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._headers = []
            self._header_bytes = 0
            self._framed = False
            return
        self._complete = True
        self._wake_reader()

    # used by the client
    @property
    def reusable(self) -> bool:
        transport = self._transport
        return (
            self._read_to_end
            and self._error is None
            and transport is not None
            and not transport.is_closing()
            and self._keep_alive
        )

    async def send(self, head: bytes, body: bytes | AsyncIterator[bytes], chunked: bool) -> None:
        self._reset()
        if isinstance(body, bytes):
            self._write(head + body)  # one segment for a small request
        else:
            self._write(head)
            async for chunk in body:
                if chunk:
                    self._write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                    await self._drained()
            if chunked:
                self._write(b"0\r\n\r\n")
        await self._drained()

    async def response_head(self) -> tuple[int, list[tuple[bytes, bytes]]]:
        assert self._head is not None
        status = await self._head
        return status, self._headers

    def end_at_head(self) -> None:
        """A HEAD answer has a Content-Length but no body: done, and not reused."""
        self._complete = True
        self.close()

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._buffered <= HIGH_WATER_BYTES and self._transport is not None:
                    self._transport.resume_reading()
                yield chunk
            elif self._complete:
                self._read_to_end = True
                return
            elif self._error is not None:
                raise self._error
            else:
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter

    def close(self) -> None:
        if self._head is not None and not self._head.done():
            self._head.cancel()  # nobody awaits it any more
        if self._transport is not None:
            self._transport.close()

    def _reset(self) -> None:
        """Ready for the next request: nothing of the previous answer survives."""
        self._parser = httptools.HttpResponseParser(self)
        self._headers = []
        self._head = asyncio.get_running_loop().create_future()
        self._chunks.clear()
        self._buffered = 0
        self._in_head = True
        self._head_bytes = self._header_bytes = 0
        self._answered = self._complete = self._read_to_end = False
        self._interim = self._keep_alive = self._ends_at_close = self._framed = False
        self.requests += 1

    def _write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        assert self._transport is not None
        self._transport.write(data)

    async def _drained(self) -> None:
        if self._can_write is not None:
            await self._can_write
        if self._error is not None:
            raise self._error

    def _fail(self, error: UpstreamError, cause: BaseException | None = None) -> None:
        error.__cause__ = cause
        self._error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake_reader()

    def _wake_reader(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None
