"""Forwarding one client request to LiteLLM and relaying the answer, byte for byte.

Pure ASGI on purpose: response chunks go to the client the moment they arrive (no
buffering middleware), a client that hangs up closes the upstream response at once, and
exactly one upstream request is made per client request (a retry happens only when the
connection was refused, i.e. LiteLLM never saw the request).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
from starlette.types import Message, Receive, Scope, Send

from memory_proxy.errors import error_body
from memory_proxy.forwarding.upstream import (
    Headers,
    UpstreamAnswer,
    UpstreamClient,
    UpstreamMonitor,
)

logger = logging.getLogger("memory_proxy.forwarding")

# RFC 9110 section 7.6.1, plus the non-standard names still seen in the wild.
HOP_BY_HOP_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
RETRY_AFTER_SECONDS = 5
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CLIENT_CLOSED_REQUEST = 499  # nginx's status for the log line: nobody was left to answer

Outcome = Literal[
    "complete", "client_disconnected", "upstream_cut", "upstream_unavailable", "upstream_failed"
]


@dataclass(frozen=True)
class UpstreamFailure:
    """No answer from LiteLLM: what to tell the client."""

    status: int
    message: str
    outcome: Outcome


def end_to_end_headers(headers: Headers, also_dropped: frozenset[bytes] = frozenset()) -> Headers:
    """Drop hop-by-hop headers, any the Connection header names, and `also_dropped`.

    Names must be lower case (ASGI gives them so).
    """
    dropped = HOP_BY_HOP_HEADERS | also_dropped
    for name, value in headers:
        if name == b"connection":
            dropped |= {token.strip().lower() for token in value.split(b",")}
    return [(name, value) for name, value in headers if name not in dropped]


@dataclass
class ForwardResult:
    status: int
    outcome: Outcome
    upstream_seconds: float = 0.0  # until response headers arrived
    first_byte_seconds: float | None = None
    body_bytes: int = 0


class ResponseObserver(Protocol):
    """Sees the answer as it passes, after each chunk was sent to the client."""

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def feed(self, chunk: bytes) -> None: ...


class Forwarder:
    """Sends requests to LiteLLM through the shared upstream client."""

    def __init__(
        self,
        client: UpstreamClient,
        base_url: str,
        monitor: UpstreamMonitor,
        *,
        wait_seconds: float,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._monitor = monitor
        self._wait_seconds = wait_seconds

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        headers: Headers,
        body: bytes | None,
        observer: ResponseObserver | None = None,
        extra_headers: Headers | None = None,
    ) -> ForwardResult:
        """Forward the request with `headers` (ready for LiteLLM: lower-case names, no
        Host, no framing for a buffered body); `body` None streams the client's through."""
        path = scope["path"]
        started = time.perf_counter()
        try:
            answer = await self._send_upstream(scope, receive, headers, body)
        except ClientDisconnected:  # while its body was being streamed upstream
            elapsed = time.perf_counter() - started
            return ForwardResult(CLIENT_CLOSED_REQUEST, "client_disconnected", elapsed)
        if isinstance(answer, UpstreamFailure):
            await _send_error(
                send,
                path,
                answer.status,
                answer.message,
                retry_after=RETRY_AFTER_SECONDS,
                extra_headers=extra_headers,
            )
            return ForwardResult(answer.status, answer.outcome, time.perf_counter() - started)
        result = ForwardResult(answer.status, "complete", time.perf_counter() - started)
        try:
            ours = frozenset(name for name, _ in extra_headers or ())
            headers_out = end_to_end_headers(
                [(name.lower(), value) for name, value in answer.headers], ours
            ) + (extra_headers or [])
            await send(
                {"type": "http.response.start", "status": answer.status, "headers": headers_out}
            )
            if observer is not None:
                observer.start(answer.status, headers_out)
            if any(name == b"content-length" for name, _ in headers_out):
                # Bounded and already made: relayed without a watch for the client leaving.
                result.outcome = await self._relay_body(answer, send, result, started, observer)
            else:
                result.outcome = await self._relay_until_done_or_disconnect(
                    answer, receive, send, result, started, observer
                )
        finally:
            await answer.aclose()
        return result

    async def _send_upstream(
        self, scope: Scope, receive: Receive, headers: Headers, body: bytes | None
    ) -> UpstreamAnswer | UpstreamFailure:
        """The upstream answer, or why there is none.

        A refused connection means LiteLLM never saw the request: it is sent again once
        LiteLLM is back, if the body can be replayed. Any other failure before the answer
        is retried only for methods that are safe to repeat, so an LLM call never runs twice.
        """
        method = scope["method"]
        query = scope["query_string"]
        target = scope["raw_path"] + b"?" + query if query else scope["raw_path"]
        replayable = body is not None or method in SAFE_METHODS
        failure = UpstreamFailure(
            503,
            f"LiteLLM is not available at {self._base_url}; retry shortly",
            "upstream_unavailable",
        )
        for _ in range(2):
            if not await self._monitor.wait_ready(self._wait_seconds):
                return failure
            content = body if body is not None else _stream_request_body(receive)
            try:
                return await self._client.send(method, target, headers, content)
            except httpx.TransportError as exc:
                if _caused_by(exc, ClientDisconnected):  # the client left mid-upload
                    raise ClientDisconnected from exc
                reason = str(exc) or type(exc).__name__
                self._monitor.mark_down(reason)
                if not _caused_by(exc, ConnectionRefusedError):
                    failure = UpstreamFailure(
                        502, f"LiteLLM failed to answer: {reason}", "upstream_failed"
                    )
                    if method not in SAFE_METHODS:
                        return failure
            if not replayable:
                return failure
        return failure

    async def _relay_until_done_or_disconnect(
        self,
        answer: UpstreamAnswer,
        receive: Receive,
        send: Send,
        result: ForwardResult,
        started: float,
        observer: ResponseObserver | None,
    ) -> Outcome:
        relay = asyncio.ensure_future(self._relay_body(answer, send, result, started, observer))
        disconnect = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait((relay, disconnect), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (relay, disconnect):
                task.cancel()
            await asyncio.gather(relay, disconnect, return_exceptions=True)
        return "client_disconnected" if relay.cancelled() else relay.result()

    async def _relay_body(
        self,
        answer: UpstreamAnswer,
        send: Send,
        result: ForwardResult,
        started: float,
        observer: ResponseObserver | None,
    ) -> Outcome:
        try:
            async for chunk in answer.body():
                if result.first_byte_seconds is None:
                    result.first_byte_seconds = time.perf_counter() - started
                result.body_bytes += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if observer is not None:
                    observer.feed(chunk)
        except httpx.HTTPError as exc:
            # Headers are gone already: end without the final chunk so the client sees a
            # truncated answer rather than a falsely complete one.
            logger.warning("upstream answer cut short: %s", exc or type(exc).__name__)
            return "upstream_cut"
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return "complete"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether `kind` is in the exception's cause chain.

    Judged from the chain, not the httpx class: httpx-aiohttp maps errors to httpx classes
    loosely (a refused connection — LiteLLM certainly never saw the request — arrives as
    ConnectTimeout, a client leaving mid-upload as a transport error).
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


async def _stream_request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            return


async def read_request_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; `RequestTooLarge` past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_error(
    send: Send,
    path: str,
    status: int,
    message: str,
    *,
    retry_after: int | None = None,
    extra_headers: Headers | None = None,
) -> None:
    body = error_body(path, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientDisconnected(Exception):
    """The client went away before its request body was read."""


class RequestTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit
