"""The connection to LiteLLM: one shared transport per process, and a monitor that knows
whether LiteLLM is answering so requests can wait (bounded) through a restart.

The transport is any `httpx.AsyncBaseTransport`. For a plain-http LiteLLM (the usual one,
beside us) it is our own lean HTTP/1.1 keep-alive client (http1_transport.py), which
costs a request a fraction of what httpx-aiohttp's does; an https LiteLLM gets
httpx-aiohttp's. httpx's own pool is not used by default because it collapses under
concurrency (encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import httpx

logger = logging.getLogger("memory_proxy.upstream")

READINESS_PATH = "/health/readiness"
# Shorter than uvicorn's 5 s server-side keep-alive, so we never reuse a closing socket.
KEEPALIVE_SECONDS = 4.0
MAX_CONNECTIONS = 2000
CONNECT_TIMEOUT_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 2.0


def transport_for(url: str) -> httpx.AsyncBaseTransport:
    """The lean client for plain http (LiteLLM beside us); aiohttp's for https."""
    return create_transport("http1" if url.startswith("http://") else "aiohttp")


def create_transport(kind: str = "http1") -> httpx.AsyncBaseTransport:
    """A pooled transport for many concurrent streams, with no read timeout:
    "http1" (ours, the default), "aiohttp" (httpx-aiohttp) or "httpx" (httpcore)."""
    if kind == "http1":
        from memory_proxy.http1_transport import HTTP1Transport

        return HTTP1Transport()
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                # httpcore counts every connection against the keep-alive limit.
                max_keepalive_connections=MAX_CONNECTIONS,
                keepalive_expiry=KEEPALIVE_SECONDS,
            )
        )
    if kind != "aiohttp":
        raise ValueError(f"unknown transport {kind!r}: expected http1, aiohttp or httpx")
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    def session() -> aiohttp.ClientSession:
        # Created lazily, inside the running event loop. A proxy must add nothing of its
        # own: no default headers, no cookie jar shared between callers, no decompression.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS
            ),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )

    transport: httpx.AsyncBaseTransport = AiohttpTransport(client=session)
    return transport


def request_timeouts(*, read: float | None = None) -> dict[str, float | None]:
    """httpx timeout extension: bounded connect, unbounded read (first tokens can take minutes)."""
    return {"connect": CONNECT_TIMEOUT_SECONDS, "read": read, "write": None, "pool": None}


class UpstreamMonitor:
    """Whether LiteLLM answers; requests await `wait_ready` instead of failing at once.

    Marked down by a failed connection (or by the supervisor when the child exits); while
    down, a single background task probes readiness with backoff until LiteLLM answers.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        *,
        ready: bool = True,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._ready = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None
        self._closed = False
        self._on_change = on_change
        if ready:
            self._ready.set()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    def mark_ready(self) -> None:
        if not self._ready.is_set():
            logger.info("LiteLLM is ready at %s", self._base_url)
            self._ready.set()
            if self._on_change:
                self._on_change(True)

    def mark_down(self, reason: str) -> None:
        if self._ready.is_set():
            logger.warning("LiteLLM unavailable at %s: %s", self._base_url, reason)
            self._ready.clear()
            if self._on_change:
                self._on_change(False)
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
        request = httpx.Request(
            "GET",
            self._base_url + READINESS_PATH,
            extensions={"timeout": request_timeouts(read=PROBE_TIMEOUT_SECONDS)},
        )
        try:
            response = await asyncio.wait_for(
                self._transport.handle_async_request(request), PROBE_TIMEOUT_SECONDS * 2
            )
            await response.aread()
            await response.aclose()
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            return False, f"LiteLLM not reachable at {self._base_url}: {exc or type(exc).__name__}"
        if response.status_code != 200:
            return False, f"LiteLLM readiness answered HTTP {response.status_code}"
        return True, ""

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
