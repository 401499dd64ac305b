"""A lean HTTP/1.1 client for one plain-http origin (LiteLLM beside us): keep-alive
connections, answers parsed by httptools (the parser uvicorn uses), bodies handed over
chunk by chunk as they arrive.

Why not aiohttp, httpcore or even httpx's request and response objects: the proxy spent
most of its CPU in them. This does only what a loopback hop to one upstream needs —
plain HTTP/1.1, no TLS, no redirects, no cookies, no decompression — and takes and gives
headers as the bytes the ASGI server already has, so a request costs a fraction of theirs.
Failures are raised as our `UpstreamError`s (errors.py), which say what happened.

A connection goes back to the pool only when its answer was read to the end by the caller
(not merely received): anything else — a caller that left mid-body, an answer cut short,
bytes beyond the answer — closes it, so no byte of one answer can reach the next caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from memory_proxy.errors import StaleConnection, UpstreamConnectFailed, UpstreamTimeout
from memory_proxy.forwarding.header_safety import check_headers, check_request_line
from memory_proxy.forwarding.http1_connection import Connection

# Shorter than uvicorn's 5 s server-side keep-alive, so we never reuse a closing socket.
KEEPALIVE_SECONDS = 4.0
MAX_IDLE_CONNECTIONS = 1000
_NO_BODY_STATUSES = frozenset({204, 304})


class Answer:
    """An upstream answer: status and headers now, the body as it arrives."""

    __slots__ = ("_client", "_connection", "_released", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]],
        client: HTTP1Client,
        connection: Connection,
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
    """Keep-alive HTTP/1.1 to `base_url`; idle connections are reused, newest first, for
    `keepalive_seconds`, then closed. Sends the headers it is given, plus Host and the
    body's framing; a request whose head would hold CR, LF or NUL is refused unsent."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float | None = None,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"{base_url}: the HTTP/1.1 client speaks plain http:// only")
        self._address = (url.hostname, url.port or 80)
        self._host = url.netloc.encode("ascii")
        self._base_path = url.path.rstrip("/").encode("ascii")
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_seconds
        self._idle: dict[Connection, None] = {}  # oldest first; a connection lost leaves
        self._reaper: asyncio.TimerHandle | None = None

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
            raise UpstreamTimeout("upstream did not answer in time") from exc
        except BaseException as exc:
            connection.close()
            if isinstance(exc, StaleConnection):
                self._close_idle()  # kept alive by the same upstream: as stale, most likely
            raise
        if method == "HEAD" or status in _NO_BODY_STATUSES:
            connection.end_at_head()
        return Answer(status, answer_headers, self, connection)

    def release(self, connection: Connection) -> None:
        if connection.reusable and len(self._idle) < MAX_IDLE_CONNECTIONS:
            connection.idle_since = time.monotonic()
            self._idle[connection] = None
            if self._reaper is None:
                self._reaper = asyncio.get_running_loop().call_later(self._keepalive, self._reap)
        else:
            connection.close()

    async def aclose(self) -> None:
        self._close_idle()

    def _close_idle(self) -> None:
        for connection in list(self._idle):
            connection.close()
        self._idle.clear()
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None

    def _reap(self) -> None:
        """Close the connections idle for the keep-alive time; one timer for the pool,
        set again for the oldest that is left."""
        self._reaper = None
        expired = time.monotonic() - self._keepalive
        for connection in list(self._idle):
            if connection.idle_since > expired:
                self._reaper = asyncio.get_running_loop().call_later(
                    connection.idle_since - expired, self._reap
                )
                return
            del self._idle[connection]
            connection.close()

    def _forget(self, connection: Connection) -> None:
        self._idle.pop(connection, None)

    def _head(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> tuple[bytes, bool]:
        """The request line and headers, and whether the body goes chunked: a streamed
        body without a Content-Length does (as httpx would frame it). Refused unsent
        (`UnsafeHeader`) when a part holds CR, LF or NUL: the lines we add hold none."""
        verb = method.encode()
        check_headers(headers)
        check_request_line(verb, self._base_path, target, self._host)
        lines = [b"%b %b%b HTTP/1.1" % (verb, self._base_path, target)]
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

    async def _connection(self) -> Connection:
        if self._idle:
            connection, _ = self._idle.popitem()  # the newest: the least likely to be closing
            if connection.reusable:
                return connection
            connection.close()
        host, port = self._address
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, protocol = await loop.create_connection(
                    lambda: Connection(self._forget), host, port
                )
        except TimeoutError as exc:
            raise UpstreamConnectFailed(f"connecting to {host}:{port} timed out") from exc
        except OSError as exc:
            raise UpstreamConnectFailed(f"cannot connect to {host}:{port}: {exc}") from exc
        return protocol
