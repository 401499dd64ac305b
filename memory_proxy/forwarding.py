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
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx
from starlette.types import Message, Receive, Scope, Send

from memory_proxy.errors import error_body
from memory_proxy.upstream import UpstreamMonitor, request_timeouts

logger = logging.getLogger("memory_proxy.forwarding")

# RFC 9110 section 7.6.1, plus the non-standard names still seen in the wild.
HOP_BY_HOP_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
RETRY_AFTER_SECONDS = 5
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_CACHED_URLS = 1024
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


def end_to_end_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Drop hop-by-hop headers, including any the Connection header names."""
    headers = list(headers)
    named = {
        token.strip().lower()
        for name, value in headers
        if name == "connection"
        for token in value.split(",")
    }
    dropped = HOP_BY_HOP_HEADERS | named
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
    """Sends requests to one upstream base URL through a shared transport."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        base_url: str,
        monitor: UpstreamMonitor,
        *,
        wait_seconds: float,
    ) -> None:
        self._transport = transport
        self._base_url = base_url
        self._monitor = monitor
        self._wait_seconds = wait_seconds
        self._urls: dict[tuple[bytes, bytes], httpx.URL] = {}
        self._host = httpx.URL(base_url).netloc

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        headers: list[tuple[str, str]],
        body: bytes | None,
        observer: ResponseObserver | None = None,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> ForwardResult:
        """Forward the request; `body` None means stream the client's body through."""
        path = scope["path"]
        started = time.perf_counter()
        try:
            response = await self._send_upstream(scope, receive, headers, body)
        except ClientDisconnected:  # while its body was being streamed upstream
            elapsed = time.perf_counter() - started
            return ForwardResult(CLIENT_CLOSED_REQUEST, "client_disconnected", elapsed)
        if isinstance(response, UpstreamFailure):
            await _send_error(
                send, path, response.status, response.message, retry_after=RETRY_AFTER_SECONDS
            )
            return ForwardResult(response.status, response.outcome, time.perf_counter() - started)
        result = ForwardResult(response.status_code, "complete", time.perf_counter() - started)
        try:
            ours = {name for name, _ in extra_headers or ()}
            headers_out = [
                (name.lower(), value)
                for name, value in response.headers.raw
                if name.lower().decode("latin-1") not in HOP_BY_HOP_HEADERS
                and name.lower() not in ours
            ] + (extra_headers or [])
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": headers_out,
                }
            )
            if observer is not None:
                observer.start(response.status_code, headers_out)
            if "content-length" in response.headers:
                # Bounded and already made: relayed without a watch for the client leaving.
                result.outcome = await self._relay_body(response, send, result, started, observer)
            else:
                result.outcome = await self._relay_until_done_or_disconnect(
                    response, receive, send, result, started, observer
                )
        finally:
            # Shielded: even when this task is cancelled, the pooled connection is released.
            await asyncio.shield(asyncio.ensure_future(response.aclose()))
        return result

    async def _send_upstream(
        self,
        scope: Scope,
        receive: Receive,
        headers: list[tuple[str, str]],
        body: bytes | None,
    ) -> httpx.Response | UpstreamFailure:
        """The upstream response, or why there is none.

        A refused connection means LiteLLM never saw the request: it is sent again once
        LiteLLM is back, if the body can be replayed. Any other failure before the answer
        is retried only for methods that are safe to repeat, so an LLM call never runs twice.
        """
        url = self._url(scope["raw_path"], scope["query_string"])
        raw_headers = self._raw_headers(headers, body)
        replayable = body is not None or scope["method"] in SAFE_METHODS
        failure = UpstreamFailure(
            503,
            f"LiteLLM is not available at {self._base_url}; retry shortly",
            "upstream_unavailable",
        )
        for _ in range(2):
            if not await self._monitor.wait_ready(self._wait_seconds):
                return failure
            content: bytes | AsyncIterator[bytes] = (
                body if body is not None else _stream_request_body(receive)
            )
            request = httpx.Request(
                scope["method"],
                url,
                headers=raw_headers,
                content=content,
                extensions={"timeout": request_timeouts()},
            )
            try:
                return await self._transport.handle_async_request(request)
            except httpx.TransportError as exc:
                if _caused_by(exc, ClientDisconnected):  # the client left mid-upload
                    raise ClientDisconnected from exc
                reason = str(exc) or type(exc).__name__
                self._monitor.mark_down(reason)
                if not _caused_by(exc, ConnectionRefusedError):
                    failure = UpstreamFailure(
                        502, f"LiteLLM failed to answer: {reason}", "upstream_failed"
                    )
                    if scope["method"] not in SAFE_METHODS:
                        return failure
            if not replayable:
                return failure
        return failure

    def _raw_headers(
        self, headers: list[tuple[str, str]], body: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """As bytes, with Host and a buffered body's length: httpx then has nothing to
        encode or add (a third of building its request)."""
        raw = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        raw.append((b"host", self._host))
        if body is not None:
            raw.append((b"content-length", b"%d" % len(body)))
        return raw

    def _url(self, raw_path: bytes, query: bytes) -> httpx.URL:
        """Parsed once per distinct path: parsing a URL costs more than the rest of the
        request's preparation."""
        key = (raw_path, query)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) >= MAX_CACHED_URLS:
                self._urls.clear()
            text = self._base_url + raw_path.decode("latin-1")
            url = httpx.URL(text + "?" + query.decode("latin-1") if query else text)
            self._urls[key] = url
        return url

    async def _relay_until_done_or_disconnect(
        self,
        response: httpx.Response,
        receive: Receive,
        send: Send,
        result: ForwardResult,
        started: float,
        observer: ResponseObserver | None,
    ) -> Outcome:
        relay = asyncio.ensure_future(self._relay_body(response, send, result, started, observer))
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
        response: httpx.Response,
        send: Send,
        result: ForwardResult,
        started: float,
        observer: ResponseObserver | None,
    ) -> Outcome:
        try:
            async for chunk in response.aiter_raw():
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
    send: Send, path: str, status: int, message: str, *, retry_after: int | None = None
) -> None:
    body = error_body(path, status, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ClientDisconnected(Exception):
    """The client went away before its request body was read."""


class RequestTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit
