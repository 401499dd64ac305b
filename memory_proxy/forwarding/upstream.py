"""The connection to LiteLLM: one shared client per process, and a monitor that knows
whether LiteLLM is answering so requests can wait (bounded) through a restart.

The forwarder speaks to an `UpstreamClient`: one request out, its answer's status and
headers back, the body streamed. For a plain-http LiteLLM (the usual one, beside us) that
is our own lean HTTP/1.1 client (http1_client.py), which costs a request a fraction of
what a general client does; an https LiteLLM gets httpx-aiohttp's transport behind the
same interface (aiohttp_transport.py), its errors translated into ours at that boundary.
httpx's own pool is not used because it collapses under concurrency (encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import httpx

from memory_proxy.errors import (
    ClientDisconnected,
    ProxyError,
    UpstreamClosed,
    UpstreamError,
    caused_by,
)
from memory_proxy.forwarding.header_safety import check_headers
from memory_proxy.forwarding.http1_client import KEEPALIVE_SECONDS, HTTP1Client

logger = logging.getLogger("memory_proxy.upstream")

READINESS_PATH = b"/health/readiness"
MAX_CONNECTIONS = 2000
CONNECT_TIMEOUT_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 2.0

Headers = list[tuple[bytes, bytes]]


class UpstreamAnswer(Protocol):
    status: int
    headers: Headers  # as received, names in lower case: hop-by-hop ones included

    def body(self) -> AsyncIterator[bytes]: ...
    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """How the proxy talks to LiteLLM. Failures are our `UpstreamError`s (errors.py),
    `UnsafeHeader` (nothing sent) for a header holding CR, LF or NUL, and
    `ClientDisconnected` when the client left while its body was being sent on."""

    async def send(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        *,
        read_timeout: float | None = None,
    ) -> UpstreamAnswer:
        """`target`: path and query below the base URL. The client adds Host and the
        body's framing (Content-Length, or chunked for a stream without one)."""
        ...

    async def aclose(self) -> None: ...


def client_for(url: str, kind: str | None = None) -> UpstreamClient:
    """The client toward `url`: "http1" (ours; the default for http://) or "aiohttp"
    (httpx-aiohttp's transport; the default for https://)."""
    kind = kind or ("http1" if url.startswith("http://") else "aiohttp")
    if kind == "http1":
        return HTTP1Client(url, connect_timeout=CONNECT_TIMEOUT_SECONDS)
    if kind != "aiohttp":
        raise ValueError(f"unknown upstream client {kind!r}: expected http1 or aiohttp")
    from memory_proxy.forwarding import aiohttp_transport  # aiohttp: an https LiteLLM only

    return HttpxClient(
        aiohttp_transport.transport(MAX_CONNECTIONS, KEEPALIVE_SECONDS),
        url,
        aiohttp_transport.ERRORS,
        aiohttp_transport.meaning,
    )


def _closed(exc: Exception) -> ProxyError:
    return UpstreamClosed(str(exc) or type(exc).__name__)


class HttpxClient:
    """Any httpx transport behind `UpstreamClient` (httpx-aiohttp's, for https): `errors`
    are what it raises, `meaning` ours for one of them (by default: the connection closed)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        errors: tuple[type[Exception], ...] = (httpx.HTTPError,),
        meaning: Callable[[Exception], ProxyError] = _closed,
    ) -> None:
        self.transport = transport
        self._base_url = base_url.rstrip("/")
        self._errors = errors
        self._meaning = meaning

    async def send(
        self,
        method: str,
        target: bytes,
        headers: Headers,
        body: bytes | AsyncIterator[bytes],
        *,
        read_timeout: float | None = None,
    ) -> UpstreamAnswer:
        check_headers(headers)
        request = httpx.Request(
            method,
            self._base_url + target.decode("latin-1"),
            headers=headers,
            content=body,
            extensions={
                "timeout": {
                    "connect": CONNECT_TIMEOUT_SECONDS,
                    "read": read_timeout,
                    "write": None,
                    "pool": None,
                }
            },
        )
        try:
            response = await self.transport.handle_async_request(request)
            return _HttpxAnswer(response, self._errors, self._ours)
        except self._errors as exc:
            raise self._ours(exc) from exc

    def _ours(self, exc: Exception) -> ProxyError:
        if caused_by(exc, ClientDisconnected):  # the client left mid-upload
            return ClientDisconnected()
        return self._meaning(exc)

    async def aclose(self) -> None:
        await self.transport.aclose()


class _HttpxAnswer:
    def __init__(
        self,
        response: httpx.Response,
        errors: tuple[type[Exception], ...],
        ours: Callable[[Exception], ProxyError],
    ) -> None:
        self._response = response
        self._errors = errors
        self._ours = ours
        self.status = response.status_code
        self.headers = [(name.lower(), value) for name, value in response.headers.raw]

    async def body(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except self._errors as exc:
            raise self._ours(exc) from exc

    async def aclose(self) -> None:
        # Shielded: even when the caller is cancelled, the pooled connection is released.
        await asyncio.shield(asyncio.ensure_future(self._response.aclose()))


class UpstreamMonitor:
    """Whether LiteLLM answers; requests await `wait_ready` instead of failing at once.

    Marked down by a failed connection (or by the supervisor when the child exits); while
    down, a single background task probes readiness with backoff until LiteLLM answers.
    """

    def __init__(
        self,
        client: UpstreamClient,
        base_url: str,
        *,
        ready: bool = True,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._ready = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None
        self._closed = False
        if ready:
            self._ready.set()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self) -> None:
        if not self._ready.is_set():
            logger.info("LiteLLM is ready at %s", self._base_url)
            self._ready.set()

    def mark_down(self, reason: str) -> None:
        if self._ready.is_set():
            logger.warning("LiteLLM unavailable at %s: %s", self._base_url, reason)
            self._ready.clear()
        if not self._closed and (self._probe_task is None or self._probe_task.done()):
            self._probe_task = asyncio.get_running_loop().create_task(self._probe_until_ready())

    async def wait_ready(self, seconds: float) -> bool:
        if self._ready.is_set():
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._ready.wait()
        return self._ready.is_set()

    async def probe(self) -> tuple[bool, str]:
        """One readiness request: (ready, reason when not)."""
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_SECONDS * 2):
                status = await self._readiness_status()
        except (UpstreamError, OSError, TimeoutError) as exc:
            return False, f"LiteLLM not reachable at {self._base_url}: {exc or type(exc).__name__}"
        if status != 200:
            return False, f"LiteLLM readiness answered HTTP {status}"
        return True, ""

    async def _readiness_status(self) -> int:
        answer = await self._client.send(
            "GET", READINESS_PATH, [], b"", read_timeout=PROBE_TIMEOUT_SECONDS
        )
        try:
            async for _ in answer.body():
                pass  # read to the end, so the connection can be reused
        finally:
            await answer.aclose()
        return answer.status

    async def _probe_until_ready(self) -> None:
        delay = 0.05
        while not self._ready.is_set():
            ready, _ = await self.probe()
            if ready:
                self.mark_ready()
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def aclose(self) -> None:
        self._closed = True
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
