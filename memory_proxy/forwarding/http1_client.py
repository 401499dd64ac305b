"""A lean HTTP/1.1 client for one plain-http origin (LiteLLM beside us): keep-alive
connections, answers parsed by httptools (the parser uvicorn uses), bodies handed over
chunk by chunk as they arrive.

Why not aiohttp, httpcore or even httpx's request and response objects: the proxy spent
most of its CPU in them. This does only what a loopback hop to one upstream needs —
plain HTTP/1.1, no TLS, no redirects, no cookies, no decompression — and takes and gives
headers as the bytes the ASGI server already has, so a request costs a fraction of theirs.
Failures are raised as httpx's exceptions, the vocabulary the forwarder already speaks.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools
import httpx

# Shorter than uvicorn's 5 s server-side keep-alive, so we never reuse a closing socket.
KEEPALIVE_SECONDS = 4.0
MAX_IDLE_CONNECTIONS = 1000
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

    # used by the client
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


class Answer:
    """An upstream answer: status and headers now, the body as it arrives."""

    __slots__ = ("_client", "_connection", "_released", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        client: HTTP1Client,
        connection: _Connection,
    ) -> None:
        self.status = status
        self.headers = headers
        self._client = client
        self._connection = connection
        self._released = False

    def body(self) -> AsyncIterator[bytes]:
        return self._connection.body()

    async def aclose(self) -> None:
        """Back to the pool when it was read to the end; closed otherwise. Nothing here
        awaits, so a cancelled caller cannot leave a connection half released."""
        if not self._released:
            self._released = True
            self._client.release(self._connection)


class HTTP1Client:
    """Keep-alive HTTP/1.1 to `base_url`; idle connections are reused for
    `KEEPALIVE_SECONDS`. Sends the headers it is given, plus Host and the body's framing."""

    def __init__(self, base_url: str, *, connect_timeout: float | None = None) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{base_url}: the HTTP/1.1 client speaks plain http:// only")
        self._address = (url.hostname, url.port or 80)
        self._host = url.netloc.encode("ascii")
        self._base_path = url.path.rstrip("/").encode("ascii")
        self._connect_timeout = connect_timeout
        self._idle: list[_Connection] = []

    async def send(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
        *,
        read_timeout: float | None = None,
    ) -> Answer:
        """`target` is the path and query below the base URL; `read_timeout` bounds the
        wait for the answer's head (None: LLM answers may take minutes to start)."""
        head, chunked = self._head(method, target, headers, body)
        connection = await self._connection()
        try:
            await connection.send(head, body, chunked)
            if read_timeout is None:
                status, answer_headers = await connection.response_head()
            else:
                async with asyncio.timeout(read_timeout):
                    status, answer_headers = await connection.response_head()
        except TimeoutError as exc:
            connection.close()
            raise httpx.ReadTimeout("upstream did not answer in time") from exc
        except BaseException:
            connection.close()
            raise
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            connection.end_at_head()
        return Answer(status, answer_headers, self, connection)

    def release(self, connection: _Connection) -> None:
        if connection.reusable and len(self._idle) < MAX_IDLE_CONNECTIONS:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close()

    async def aclose(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()

    def _head(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> tuple[bytes, bool]:
        """The request line and headers, and whether the body goes chunked: a streamed
        body without a Content-Length does (as httpx would frame it)."""
        lines = [b"%b %b%b HTTP/1.1" % (method.encode(), self._base_path, target)]
        lines.append(b"host: " + self._host)
        lines += [b"%b: %b" % header for header in headers]
        chunked = False
        if isinstance(body, bytes):
            if body:
                lines.append(b"content-length: %d" % len(body))
        elif not any(name.lower() == b"content-length" for name, _ in headers):
            lines.append(b"transfer-encoding: chunked")
            chunked = True
        lines.append(b"\r\n")
        return b"\r\n".join(lines), chunked

    async def _connection(self) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if now - connection.idle_since < KEEPALIVE_SECONDS and connection.reusable:
                return connection
            connection.close()
        host, port = self._address
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(_Connection, host, port)
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return protocol
