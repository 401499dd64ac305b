"""The memory proxy as one pure-ASGI application.

Local endpoints (health, routing debug) are served by a small Starlette router; every
other request is forwarded to LiteLLM with the caller's identity and memory scope applied.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from memory_proxy.accounting.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from memory_proxy.accounting.metrics import Metrics
from memory_proxy.accounting.rate_limit import (
    Bucket,
    LocalRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    Verdict,
)
from memory_proxy.accounting.usage import UsageRecorder, request_usage_in_stream
from memory_proxy.api.sessions import SessionsAPI
from memory_proxy.api.usage import UsageAPI
from memory_proxy.config import Settings
from memory_proxy.errors import error_response
from memory_proxy.forwarding.forwarder import (
    ClientDisconnected,
    Forwarder,
    ForwardResult,
    RequestTooLarge,
    end_to_end_headers,
    read_request_body,
)
from memory_proxy.forwarding.upstream import Headers, UpstreamClient, UpstreamMonitor, client_for
from memory_proxy.identity import auth
from memory_proxy.identity.client_detection import VALID_ID, InvalidIdentifier
from memory_proxy.identity.routing import RoutingDecision, decide
from memory_proxy.identity.supermemory import (
    SupermemoryRouting,
    configuration_warnings,
    scope_headers,
)
from memory_proxy.logging_setup import log_request
from memory_proxy.memory.capture import AnswerCapture
from memory_proxy.memory.conversation import ConversationMemory, Turn
from memory_proxy.memory.injection import CHAT_APIS
from memory_proxy.stores import open_store, open_usage_log
from memory_proxy.usage_record import UsageRecord

logger = logging.getLogger("memory_proxy")

MAX_JSON_BODY_BYTES = 64 * 1024 * 1024
REQUEST_ID_HEADER = "x-request-id"
SESSIONS_PATH = "/v1/sessions"
# Set by the proxy (or its upstream client) for LiteLLM, never taken from the client as is.
_REPLACED_HEADERS = frozenset({b"host", b"content-length", REQUEST_ID_HEADER.encode()})
_REPLACED_FOR_STREAMED_BODY = _REPLACED_HEADERS - {b"content-length"}  # its length stands


class MemoryProxy:
    """ASGI app: `MemoryProxy(settings)`; `monitor` lets a supervisor report LiteLLM's state.

    `upstream` replaces the client toward LiteLLM (tests run the forwarding over each kind).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: UpstreamClient | None = None,
        upstream_ready: bool = True,
    ) -> None:
        self.settings = settings
        self.supermemory = SupermemoryRouting.from_litellm(settings.litellm)
        self.metrics = Metrics(settings)
        self._upstream = upstream or client_for(settings.litellm_url)
        self.monitor = UpstreamMonitor(self._upstream, settings.litellm_url, ready=upstream_ready)
        self._forwarder = Forwarder(
            self._upstream,
            settings.litellm_url,
            self.monitor,
            wait_seconds=settings.upstream_wait_seconds,
            first_byte_timeout=settings.upstream_first_byte_timeout_seconds,
            idle_timeout=settings.upstream_idle_timeout_seconds,
        )
        self.memory = (
            ConversationMemory(
                open_store(settings.memory),
                settings.memory,
                on_failure=self.metrics.store_errors.inc,
            )
            if settings.memory.enabled
            else None
        )
        self.usage = (
            UsageRecorder(
                open_usage_log(settings.memory, settings.usage),
                on_failure=self.metrics.store_errors.inc,
            )
            if settings.usage.enabled
            else None
        )
        self.rate_limiter = _rate_limiter(settings)
        sessions = SessionsAPI(self.memory, settings)
        self._local = Router(
            routes=[
                Route("/health", self._health, methods=["GET"]),
                Route("/memory-routing/info", self._routing_info, methods=["GET"]),
                Route("/v1/debug/routing", self._routing_info, methods=["GET"]),
                Route("/metrics", self._metrics, methods=["GET"]),
                Route("/v1/usage", UsageAPI(self.usage, settings).totals, methods=["GET"]),
                Route(SESSIONS_PATH, sessions.list, methods=["GET"]),
                Route(SESSIONS_PATH + "/{session_id}", sessions.one, methods=["GET", "DELETE"]),
            ]
        )
        self._local_paths = frozenset(
            route.path for route in self._local.routes if isinstance(route, Route)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path in self._local_paths or path.startswith(SESSIONS_PATH + "/"):
                await self._local(scope, receive, send)
            else:
                await self._proxy(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets (LiteLLM's realtime API) are not proxied
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for warning in configuration_warnings(self.settings.litellm, self.supermemory):
                    logger.warning(warning)
                if self.memory is not None:
                    self.memory.start_purging()
                if self.usage is not None:
                    self.usage.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.monitor.aclose()
                await self._upstream.aclose()
                if self.memory is not None:
                    await self.memory.aclose()
                if self.usage is not None:
                    await self.usage.aclose()
                if self.rate_limiter is not None:
                    await self.rate_limiter.aclose()
                self.metrics.process_stopped()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        arrived = time.time()
        path: str = scope["path"]
        raw_headers: Headers = scope["headers"]
        lookup = {name.decode("latin-1"): value.decode("latin-1") for name, value in raw_headers}
        request_id = lookup.get(REQUEST_ID_HEADER, "")
        if not VALID_ID.match(request_id):
            request_id = os.urandom(16).hex()  # uuid4().hex's format, at a fifth of its cost
        fields: dict[str, Any] = {
            "request_id": request_id,
            "method": scope["method"],
            "endpoint": path,
        }

        body: bytes | None = None
        payload: Any = None
        if scope["method"] == "POST" and "json" in lookup.get("content-type", ""):
            try:
                body = await read_request_body(receive, MAX_JSON_BODY_BYTES)
            except ClientDisconnected:
                return
            except RequestTooLarge as exc:
                await error_response(path, 413, str(exc))(scope, receive, send)
                return
            payload = _parse_json(body)
            if payload is None:
                self.metrics.malformed_bodies.inc()  # forwarded as is: LiteLLM says what
        elif "content-length" not in lookup and "transfer-encoding" not in lookup:
            body = b""  # HTTP/1.1: a request with neither has no body, nothing to stream
        caller = auth.identify(lookup, _client_host(scope), self.settings)
        if caller.refused:
            message = "an API key is required (Authorization: Bearer … or x-api-key)"
            await error_response(path, 401, message)(scope, receive, send)
            self._count(fields, None, None, 401)
            return
        try:
            decision = decide(
                lookup, payload, self.settings, self.supermemory, caller.bound_user_id
            )
        except InvalidIdentifier as exc:
            await error_response(path, 400, str(exc))(scope, receive, send)
            self._count(fields, None, None, 400)
            return

        verdict, limit_headers = await self._rate_limit(decision.identity.user_id)
        if verdict is not None and not verdict.allowed:
            message = (
                f"rate limit for {decision.identity.user_id} reached "
                f"({self.settings.rate_limit.requests_per_minute} requests per minute)"
            )
            refusal = error_response(path, 429, message, retry_after=verdict.retry_after)
            refusal.raw_headers += limit_headers
            await refusal(scope, receive, send)
            self.metrics.rate_limited.inc()
            self._count(fields, decision.identity.user_id, decision.model, 429)
            return

        records_usage = self.usage is not None and scope["method"] == "POST"
        outgoing, turn = await self._prepare(path, payload, decision, records_usage)
        if outgoing is not payload:
            body = orjson.dumps(outgoing)
        api = CHAT_APIS.get(path) if turn else None
        capture = AnswerCapture(api) if turn or records_usage else None

        self.metrics.in_flight.inc()
        try:
            result = await self._forwarder.forward(
                scope,
                receive,
                send,
                headers=self._upstream_headers(raw_headers, request_id, caller, decision, body),
                body=body,
                observer=capture,
                extra_headers=limit_headers,
            )
        finally:
            self.metrics.in_flight.dec()
        if capture is not None:
            capture.finish()
        if turn is not None and capture is not None and self.memory is not None:
            disconnected = result.outcome == "client_disconnected"
            self.memory.finish(turn, capture, client_disconnected=disconnected)
        total = time.perf_counter() - started
        record = _usage_record(arrived, request_id, path, decision, payload, result, capture, total)
        if records_usage and self.usage is not None:
            self.usage.record(record)
        self.metrics.observe(decision.model, total, result.first_byte_seconds, result.outcome)
        fields = record.as_dict()
        del fields["time"]  # the log line has its own
        fields |= {
            "method": scope["method"],
            "outcome": result.outcome,
            "injected": turn.injected if turn else None,
        }
        self._count(fields, decision.identity.user_id, decision.model, result.status)

    async def _prepare(
        self, path: str, payload: Any, decision: RoutingDecision, records_usage: bool
    ) -> tuple[Any, Turn | None]:
        """The payload to send (asking for a stream's token counts, with memory injected)
        and the memory turn it opened; the payload itself when nothing changes."""
        outgoing = payload
        if records_usage and (asking := request_usage_in_stream(path, payload)) is not None:
            outgoing = asking
        api = CHAT_APIS.get(path)
        if self.memory is None or not decision.memory or not api:
            return outgoing, None
        if not isinstance(outgoing, dict) or decision.session_id is None:
            return outgoing, None
        turn = await self.memory.begin(
            api, decision.identity.user_id, decision.session_id, outgoing
        )
        if turn is not None and turn.injected:
            outgoing = turn.body
        return outgoing, turn

    def _count(
        self, fields: dict[str, Any], user_id: str | None, model: str | None, status: int
    ) -> None:
        """The request's log line and its count in /metrics."""
        self.metrics.count(user_id, model, status)
        log_request({**fields, "model": model, "user_id": user_id, "status": status})

    async def _rate_limit(self, user_id: str) -> tuple[Verdict | None, list[tuple[bytes, bytes]]]:
        """The limiter's verdict and the headers saying so; (None, []) when limiting is off
        or the limiter itself fails (the request is let through)."""
        if self.rate_limiter is None:
            return None, []
        try:
            verdict = await self.rate_limiter.check(user_id)
        except Exception as exc:
            logger.warning("rate limiter failed (%s); request let through", exc)
            return None, []
        limit = self.rate_limiter.bucket.requests_per_minute
        return verdict, [
            (b"x-ratelimit-limit-requests", str(limit).encode()),
            (b"x-ratelimit-remaining-requests", str(verdict.remaining).encode()),
        ]

    def _upstream_headers(
        self,
        headers: Headers,
        request_id: str,
        caller: auth.Caller,
        decision: RoutingDecision,
        body: bytes | None,
    ) -> Headers:
        """The client's end-to-end headers with our request id, credentials and scope.

        A streamed body (None) keeps the client's Content-Length; a buffered one gets its
        own from the upstream client.
        """
        replaced = _REPLACED_HEADERS if body is not None else _REPLACED_FOR_STREAMED_BODY
        outgoing = end_to_end_headers(headers, replaced)
        outgoing.append((b"x-request-id", request_id.encode()))
        outgoing = auth.with_upstream_credentials(outgoing, caller, self.settings.upstream_key)
        return scope_headers(
            outgoing,
            routed=decision.supermemory,
            user_id=decision.identity.user_id,
            session_id=decision.session_id,
            api_key=self.settings.supermemory_api_key,
        )

    async def _metrics(self, request: Request) -> Response:
        self.metrics.litellm_ready.set(1 if self.monitor.is_ready else 0)
        return Response(self.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def _health(self, request: Request) -> Response:
        ready, reason = await self.monitor.probe()
        base = {"litellm_url": self.settings.litellm_url}
        if ready:
            self.monitor.mark_ready()
            return JSONResponse({"status": "healthy", "litellm": "ready", **base})
        return JSONResponse({"status": "unhealthy", "reason": reason, **base}, status_code=503)

    async def _routing_info(self, request: Request) -> Response:
        query_model = request.query_params.get("model")
        caller = auth.identify_request(request, self.settings)
        try:
            decision = decide(
                request.headers,
                {"model": query_model} if query_model else None,
                self.settings,
                self.supermemory,
                caller.bound_user_id,
            )
        except InvalidIdentifier as exc:
            return error_response(request.url.path, 400, str(exc))
        return JSONResponse(decision.describe())


def _rate_limiter(settings: Settings) -> RateLimiter | None:
    """Shared through Redis when memory is, so several instances enforce one limit."""
    limits = settings.rate_limit
    if not limits.enabled:
        return None
    bucket = Bucket(limits.requests_per_minute, limits.burst)
    if settings.memory.store == "redis":
        return RedisRateLimiter(settings.memory.redis_url, bucket)
    return LocalRateLimiter(bucket)


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _usage_record(
    arrived: float,
    request_id: str,
    path: str,
    decision: RoutingDecision,
    payload: Any,
    result: ForwardResult,
    capture: AnswerCapture | None,
    total_seconds: float,
) -> UsageRecord:
    first_byte = result.first_byte_seconds
    return UsageRecord(
        time=arrived,
        request_id=request_id,
        user_id=decision.identity.user_id,
        session_id=decision.session_id,
        client=decision.identity.client,
        model=decision.model,
        endpoint=path,
        status=result.status,
        stream=isinstance(payload, dict) and payload.get("stream") is True,
        upstream_ms=_ms(result.upstream_seconds),
        first_byte_ms=None if first_byte is None else _ms(first_byte),
        total_ms=_ms(total_seconds),
        prompt_tokens=capture.usage.prompt_tokens if capture else None,
        completion_tokens=capture.usage.completion_tokens if capture else None,
        cost=capture.cost if capture else None,
    )


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _parse_json(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON (LiteLLM will say what is wrong)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
