"""httpx-aiohttp's transport, for an https LiteLLM (upstream.py `client_for`), and what its
errors mean in our words. Imported only when such a client is made: aiohttp costs every
process about 0.25 s of CPU to import, and the usual LiteLLM, beside us, is plain http.

httpx-aiohttp maps aiohttp's errors to httpx's loosely (any lost connection becomes a
ConnectTimeout), so the meaning is judged from aiohttp's own, the cause; any other (a
connection reset, closed or cut mid-answer) is UpstreamClosed.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from memory_proxy.errors import (
    ProxyError,
    UpstreamClosed,
    UpstreamConnectFailed,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
)

ERRORS = (httpx.HTTPError, aiohttp.ClientError)  # what the transport raises
_MEANINGS: tuple[tuple[type[BaseException], type[UpstreamError]], ...] = (
    (aiohttp.ClientConnectorError, UpstreamConnectFailed),
    (aiohttp.ConnectionTimeoutError, UpstreamConnectFailed),
    (aiohttp.ServerTimeoutError, UpstreamTimeout),
)


def transport(max_connections: int, keepalive_seconds: float) -> AiohttpTransport:
    def session() -> aiohttp.ClientSession:
        # Created lazily, inside the running event loop. A proxy must add nothing of its
        # own: no default headers, no cookie jar shared between callers, no decompression.
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=max_connections, keepalive_timeout=keepalive_seconds
            ),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
        )

    return AiohttpTransport(client=session)


def meaning(exc: Exception) -> ProxyError:
    """Ours for one of ERRORS (the client leaving is told apart before). The message
    stays theirs."""
    if isinstance(exc, aiohttp.ClientResponseError):  # an answer aiohttp would not parse
        return UpstreamProtocolError(f"invalid answer from upstream: {exc.message}")
    origin = exc.__cause__ if isinstance(exc, httpx.HTTPError) else exc
    ours = next((ours for theirs, ours in _MEANINGS if isinstance(origin, theirs)), UpstreamClosed)
    return ours(str(exc) or type(exc).__name__)
