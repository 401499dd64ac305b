"""Forwarding one client request to LiteLLM and relaying the answer, byte for byte.

Pure ASGI on purpose: response chunks go to the client the moment they arrive (no
buffering middleware), a client that hangs up or an upstream that stays silent too long
ends the exchange and closes the upstream connection (request_watch.py), and exactly one
upstream request is made per client request (it is sent again only when LiteLLM certainly
never processed it: the connection was refused, or a kept-alive one was found closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

from starlette.types import Message, Receive, Scope, Send

from memory_proxy.errors import (
    ClientDisconnected,
    ProxyError,
    Refusal,
    StaleConnection,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnavailable,
    caused_by,
    error_answer,
)
from memory_proxy.forwarding.cut_short import leave_unfinished, quiet_uvicorn_about_cut_answers
from memory_proxy.forwarding.header_safety import UnsafeHeader
from memory_proxy.forwarding.request_watch import RequestWatch, Watchdog
from memory_proxy.forwarding.upstream import (
    Headers,
    UpstreamAnswer,
    UpstreamClient,
    UpstreamMonitor,
)

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
# LiteLLM answers CORS for every origin (DESIGN.md); the proxy answers browsers itself
# (browser_guard.py), so LiteLLM's CORS headers never pass.
CORS_ANSWER_HEADERS = frozenset(
    {
        b"access-control-allow-origin",
        b"access-control-allow-credentials",
        b"access-control-allow-methods",
        b"access-control-allow-headers",
        b"access-control-allow-private-network",
        b"access-control-expose-headers",
        b"access-control-max-age",
    }
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Outcome = Literal[
    "complete",
    "client_disconnected",
    "refused",
    "upstream_cut",
    "upstream_unavailable",
    "upstream_failed",
    "upstream_timeout",
]


# Never relayed from LiteLLM's answer.
_NOT_RELAYED = HOP_BY_HOP_HEADERS | CORS_ANSWER_HEADERS


def relayed_headers(answer: Headers, ours: Headers) -> Headers:
    """LiteLLM's answer headers the client gets, then `ours`, which replace any of the
    same name: hop-by-hop headers, those the Connection header names, and CORS headers are
    dropped. Names must be lower case (an `UpstreamAnswer`'s and ours are)."""
    dropped = with_connection_named(answer, _NOT_RELAYED)
    replaced = {name for name, _ in ours}
    relayed = [(n, value) for n, value in answer if n not in dropped and n not in replaced]
    relayed += ours
    return relayed


def with_connection_named(headers: Headers, dropped: frozenset[bytes]) -> frozenset[bytes]:
    """`dropped` and the headers a Connection header names: hop-by-hop by declaration
    (RFC 9110 section 7.6.1)."""
    for name, value in headers:
        if name == b"connection":
            named = {token.strip().lower() for token in value.split(b",")}
            if not named <= dropped:  # usually `keep-alive` alone, dropped already
                dropped = dropped | named
    return dropped


@dataclass(slots=True)
class ForwardResult:
    status: int
    outcome: Outcome
    upstream_seconds: float = 0.0  # until response headers arrived
    first_byte_seconds: float | None = None
    head_sent: bool = False  # the answer's status and headers went to the client
    cut_by: str = ""  # why LiteLLM's answer ended early, for the log


class ResponseObserver(Protocol):
    """Sees the answer as it passes, after each chunk was sent to the client; its head
    with header names in lower case."""

    def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...
    def feed(self, chunk: bytes) -> None: ...
    @property
    def ended(self) -> bool:
        """The stream's last event was fed: the client has the whole answer."""
        ...


class Forwarder:
    """Sends requests to LiteLLM through the shared upstream client."""

    def __init__(
        self,
        client: UpstreamClient,
        base_url: str,
        monitor: UpstreamMonitor,
        *,
        wait_seconds: float,
        first_byte_timeout: float,
        idle_timeout: float,
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._monitor = monitor
        self._wait_seconds = wait_seconds
        self._watchdog = Watchdog(first_byte_timeout=first_byte_timeout, idle_timeout=idle_timeout)
        quiet_uvicorn_about_cut_answers()

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
        request_id: str = "",
    ) -> ForwardResult:
        """Forward the request with `headers` (ready for LiteLLM: lower-case names, no
        Host, no framing for a buffered body); `body` None streams the client's through.
        `request_id` names the request in the log."""
        started = time.perf_counter()
        result = ForwardResult(ClientDisconnected.status, "client_disconnected")  # until known
        watch = self._watchdog.watch(receive, listen=body is not None)
        try:
            try:
                answer = await self._send_upstream(scope, receive, headers, body, watch)
            finally:
                result.upstream_seconds = time.perf_counter() - started
            if isinstance(answer, ProxyError):
                result.status, result.outcome = answer.status, _outcome(answer)
                await _answer_error(scope, receive, send, answer, extra_headers)
                return result
            try:
                await self._relay(answer, send, result, started, observer, extra_headers, watch)
                if result.outcome == "upstream_cut":
                    leave_unfinished(request_id, result.cut_by)
            finally:
                await answer.aclose()
        except ClientDisconnected:  # while its body was being streamed upstream
            pass
        except asyncio.CancelledError:
            if not watch.ended_this():
                raise
            result.outcome = watch.reason or "client_disconnected"
            if result.outcome == "client_disconnected" and observer is not None and observer.ended:
                result.outcome = "complete"  # it left after the last event (Codex does)
            if result.outcome == "upstream_timeout":
                await self._timed_out(scope, receive, send, result, extra_headers, request_id)
        finally:
            watch.close()
        return result

    async def _timed_out(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        result: ForwardResult,
        extra_headers: Headers | None,
        request_id: str,
    ) -> None:
        """A 504 when the client has had nothing yet; otherwise its stream ends unfinished."""
        if result.head_sent:
            seconds = self._watchdog.idle_timeout
            leave_unfinished(request_id, f"LiteLLM sent nothing for {seconds:g} s")
        else:
            seconds = self._watchdog.first_byte_timeout
            timeout = UpstreamTimeout(f"LiteLLM did not answer within {seconds:g} s")
            result.status = timeout.status
            await _answer_error(scope, receive, send, timeout, extra_headers)

    async def _send_upstream(
        self,
        scope: Scope,
        receive: Receive,
        headers: Headers,
        body: bytes | None,
        watch: RequestWatch,
    ) -> UpstreamAnswer | ProxyError:
        """The upstream answer, or the error to answer instead.

        When LiteLLM certainly never processed the request — the connection was refused,
        or a kept-alive one turned out closed before any byte of answer — it is sent again
        once LiteLLM is back, if the body can be replayed. Any other failure before the
        answer is retried only for methods that are safe to repeat, so an LLM call never
        runs twice.
        """
        method = scope["method"]
        query = scope["query_string"]
        target = scope["raw_path"] + b"?" + query if query else scope["raw_path"]
        replayable = body is not None or method in SAFE_METHODS
        failure: ProxyError = UpstreamUnavailable(
            f"LiteLLM is not available at {self._base_url}; retry shortly"
        )
        for _ in range(2):
            ready = self._monitor.is_ready  # no coroutine made when it is (most requests)
            if not ready and not await self._monitor.wait_ready(self._wait_seconds):
                return failure
            content = body if body is not None else _stream_request_body(receive, watch)
            try:
                return await self._client.send(method, target, headers, content)
            except UnsafeHeader as exc:
                return exc
            except UpstreamError as exc:
                reason = str(exc) or type(exc).__name__
                if not isinstance(exc, UpstreamProtocolError):  # it answered, badly
                    self._monitor.mark_down(reason)
                if not caused_by(exc, ConnectionRefusedError, StaleConnection):
                    failure = UpstreamError(f"LiteLLM failed to answer: {reason}")
                    if method not in SAFE_METHODS:
                        return failure
            if not replayable:
                return failure
        return failure

    async def _relay(
        self,
        answer: UpstreamAnswer,
        send: Send,
        result: ForwardResult,
        started: float,
        observer: ResponseObserver | None,
        extra_headers: Headers | None,
        watch: RequestWatch,
    ) -> None:
        """The answer's head, then its body chunk by chunk as it arrives."""
        watch.answered()
        result.status = answer.status
        headers_out = relayed_headers(answer.headers, extra_headers or [])
        result.head_sent = True
        await send({"type": "http.response.start", "status": answer.status, "headers": headers_out})
        if observer is not None:
            observer.start(answer.status, headers_out)
        try:
            async for chunk in answer.body():
                watch.activity()
                if result.first_byte_seconds is None:
                    result.first_byte_seconds = time.perf_counter() - started
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if observer is not None:
                    observer.feed(chunk)
        except UpstreamError as exc:
            # Headers are gone already: end without the final chunk so the client sees a
            # truncated answer rather than a falsely complete one (cut_short.py).
            result.outcome, result.cut_by = "upstream_cut", str(exc) or type(exc).__name__
            return
        watch.close()  # all of it was handed over: a client leaving now changes nothing
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        result.outcome = "complete"


def _outcome(error: ProxyError) -> Outcome:
    """How a request the forwarder answered itself ended, for the log and the metrics."""
    if isinstance(error, UpstreamUnavailable):
        return "upstream_unavailable"
    return "upstream_failed" if isinstance(error, UpstreamError) else "refused"


async def _stream_request_body(receive: Receive, watch: RequestWatch) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        if message.get("body"):
            yield message["body"]
        if not message.get("more_body", False):
            watch.upload_done()
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


async def answer_instead(
    scope: Scope, receive: Receive, send: Send, error: ProxyError, extra_headers: Headers
) -> ForwardResult:
    """Answer `error` where LiteLLM's answer would have gone (a request whose headers may
    not be sent, say), as `forward` answers what it could not send."""
    await _answer_error(scope, receive, send, error, extra_headers)
    return ForwardResult(error.status, _outcome(error))


async def _answer_error(
    scope: Scope, receive: Receive, send: Send, error: ProxyError, extra_headers: Headers | None
) -> None:
    response = error_answer(scope["path"], error)
    response.raw_headers += extra_headers or []
    await response(scope, receive, send)


class RequestTooLarge(Refusal):
    """A JSON body larger than the proxy reads: 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")
