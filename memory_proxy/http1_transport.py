"""A lean HTTP/1.1 client transport for httpx: keep-alive connections to LiteLLM, with
responses parsed by httptools (the parser uvicorn uses) and bodies handed over chunk by
chunk as they arrive.

Why not aiohttp or httpcore: the proxy spends most of its CPU in the client. This does
only what a loopback hop to one upstream needs — plain HTTP/1.1, no TLS, no redirects,
no cookies, no decompression — so a request costs a fraction of theirs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from typing import cast

import httptools
import httpx

# Shorter than uvicorn's 5 s server-side keep-alive, so we never reuse a closing socket.
KEEPALIVE_SECONDS = 4.0
MAX_IDLE_PER_HOST = 1000
HIGH_WATER_BYTES = 1024 * 1024  # unread body held before reading from the socket pauses
_NO_BODY_STATUSES = frozenset({204, 304})


class _Connection(asyncio.Protocol):
    """One connection; one request at a time."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._head: asyncio.Future[int] | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None
        self._complete = False
        self._interim = False
        self._keep_alive = False
        self._ends_at_close = False
        self._error: Exception | None = None
        self.idle_since = 0.0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid answer from upstream: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ends_at_close and exc is None:
            self.on_message_complete()  # RFC 9112 6.3: no length given, the close ends it
        elif not self._complete:
            self._fail(httpx.ReadError("upstream closed the connection"), cause=exc)
        self._wake_writer()

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # "100 Continue" and other interim answers: the real one follows
            self._interim = True
            return
        # Asked now: the parser forgets it once the message is complete.
        self._keep_alive = self._parser.should_keep_alive()
        named = {name.lower() for name, _ in self._headers}
        self._ends_at_close = not named & {b"content-length", b"transfer-encoding"}
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
            return
        self._complete = True
        self._wake_reader()

    # used by the transport
    @property
    def reusable(self) -> bool:
        transport = self._transport
        return (
            self._complete
            and self._error is None
            and transport is not None
            and not transport.is_closing()
            and self._keep_alive
        )

    async def send(self, head: bytes, body: bytes | httpx.AsyncByteStream, chunked: bool) -> None:
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
        self._parser = httptools.HttpResponseParser(self)
        self._headers = []
        self._head = asyncio.get_running_loop().create_future()
        self._complete = False
        self._keep_alive = False
        self._ends_at_close = False

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

    def _fail(self, error: Exception, cause: BaseException | None = None) -> None:
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


class _ResponseBody(httpx.AsyncByteStream):
    def __init__(self, transport: HTTP1Transport, key: tuple[str, int], connection: _Connection):
        self._transport = transport
        self._key = key
        self._connection = connection
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._connection.body():
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport._release(self._key, self._connection)


class HTTP1Transport(httpx.AsyncBaseTransport):
    """Plain-HTTP keep-alive transport; idle connections are reused for `KEEPALIVE_SECONDS`."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = collections.defaultdict(list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme != "http":
            raise httpx.UnsupportedProtocol(f"{url.scheme} is not supported: plain http only")
        key = (url.host, url.port or 80)
        timeouts = request.extensions.get("timeout", {})
        connection = await self._connection(key, timeouts.get("connect"))
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        try:
            body = request.content if _has_bytes(request) else request.stream
            assert isinstance(body, bytes | httpx.AsyncByteStream)
            await connection.send(_head(request), body, chunked)
            async with asyncio.timeout(timeouts.get("read")):
                status, headers = await connection.response_head()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ReadTimeout("upstream did not answer in time") from exc
        except BaseException:
            connection.close()
            raise
        if request.method == "HEAD" or status in _NO_BODY_STATUSES:
            connection.end_at_head()
        return httpx.Response(
            status,
            headers=headers,
            stream=_ResponseBody(self, key, connection),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _connection(self, key: tuple[str, int], connect_timeout: float | None) -> _Connection:
        idle = self._idle[key]
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < KEEPALIVE_SECONDS and connection.reusable:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, protocol = await loop.create_connection(_Connection, *key)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {key[0]}:{key[1]} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {key[0]}:{key[1]}: {exc}") from exc
        return protocol

    def _release(self, key: tuple[str, int], connection: _Connection) -> None:
        idle = self._idle[key]
        if connection.reusable and len(idle) < MAX_IDLE_PER_HOST:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _head(request: httpx.Request) -> bytes:
    target = request.url.raw_path
    lines = [b"%b %b HTTP/1.1" % (request.method.encode(), target)]
    lines += [b"%b: %b" % (name, value) for name, value in request.headers.raw]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _has_bytes(request: httpx.Request) -> bool:
    with contextlib.suppress(httpx.RequestNotRead):
        request.content  # noqa: B018 - raises when the body is a stream
        return True
    return False
