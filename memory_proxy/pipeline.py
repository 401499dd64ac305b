"""One forwarded request, as a pipeline: identify → admit → prepare → forward → record.

- identify: read the JSON body, recognise the caller (auth) and what it asks for (routing);
- admit: the rate limit;
- prepare: the body LiteLLM gets (the stream's token counts asked for, memory injected);
- forward: relay the answer byte for byte while the capture reads it;
- record: memory, the usage record, metrics and the request's log line.

A step that refuses the request raises a `Refusal` (errors.py); one place answers it in the
client's format, counts it and logs it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from memory_proxy.accounting.live import LiveFeed
from memory_proxy.accounting.metrics import Metrics
from memory_proxy.accounting.rate_limit import RateLimiter
from memory_proxy.accounting.usage import UsageRecorder, request_usage_in_stream
from memory_proxy.browser_guard import is_json_content_type
from memory_proxy.config import Settings
from memory_proxy.errors import ClientDisconnected, Refusal, error_answer
from memory_proxy.forwarding.forwarder import (
    Forwarder,
    ForwardResult,
    end_to_end_headers,
    read_request_body,
)
from memory_proxy.forwarding.upstream import Headers
from memory_proxy.identity import auth
from memory_proxy.identity.client_key_guard import KEY_IN_URL, ClientKeyGuard
from memory_proxy.identity.memory_mode import MEMORY_CONTROL_HEADERS
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.routing import RoutingDecision, decide
from memory_proxy.identity.supermemory import SupermemoryRouting, scope_headers
from memory_proxy.logging_setup import log_failure, log_request
from memory_proxy.memory.capture import AnswerCapture
from memory_proxy.memory.injection import CHAT_APIS
from memory_proxy.memory.request_memory import MemoryScope, MemoryTurn, RequestMemory
from memory_proxy.proxied_request import (
    REQUEST_ID_HEADER,
    ProxiedRequest,
    incoming,
    request_id_header,
)
from memory_proxy.records.usage import UsageRecord

logger = logging.getLogger("memory_proxy")

MAX_JSON_BODY_BYTES = 64 * 1024 * 1024
# Set by the proxy (or its upstream client) for LiteLLM, never taken from the client as is;
# and our own memory controls, which are not LiteLLM's business.
_REPLACED_HEADERS = frozenset(
    {b"host", b"content-length", REQUEST_ID_HEADER.encode(), *MEMORY_CONTROL_HEADERS}
)
_REPLACED_FOR_STREAMED_BODY = _REPLACED_HEADERS - {b"content-length"}  # its length stands


class ProxyPipeline:
    """Runs each forwarded request through the steps; shares the app's parts."""

    def __init__(
        self,
        settings: Settings,
        supermemory: SupermemoryRouting,
        privacy: ModelPrivacy,
        forwarder: Forwarder,
        metrics: Metrics,
        memory: RequestMemory | None,
        usage: UsageRecorder | None,
        rate_limiter: RateLimiter | None,
        live: LiveFeed,
    ) -> None:
        self.settings = settings
        self.supermemory = supermemory
        self.privacy = privacy
        self.forwarder = forwarder
        self.metrics = metrics
        self.memory = memory
        self.usage = usage
        self.rate_limiter = rate_limiter
        self._key_guard = ClientKeyGuard.from_settings(settings)
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = incoming(scope)
        try:
            if self._key_guard.in_url(scope["raw_path"], scope["query_string"]):
                raise Refusal(400, KEY_IN_URL)
            await self._identify(request, receive)
            await self._admit(request)
        except ClientDisconnected:
            return
        except Refusal as refusal:
            await self._refuse(request, refusal, receive, send)
            return
        turn = await self._prepare(request)
        api = turn.api if turn and turn.needs_answer else None
        records_usage = self._records_usage(request)
        capture = AnswerCapture(api) if api or records_usage else None
        memory_headers = turn.answer_headers() if turn else []
        result = await self._forward(request, receive, send, capture, memory_headers)
        self._record(request, turn, capture, result)

    async def _identify(self, request: ProxiedRequest, receive: Receive) -> None:
        """The JSON body, the caller and the routing decision; refusals for a body too
        large (413, RequestTooLarge), a caller with no key or conflicting keys (401) and
        unusable ids (400, InvalidIdentifier).

        A body is read as JSON only when its content type says so exactly (the browser
        guard refused a chat API's other bodies); any other body streams through."""
        lookup = request.lookup
        if request.method == "POST" and is_json_content_type(lookup.get("content-type", "")):
            request.body = await read_request_body(receive, MAX_JSON_BODY_BYTES)
            request.payload = _parse_json(request.body)
            if request.payload is None:
                self.metrics.malformed_bodies.inc()  # forwarded as is: LiteLLM says what
        elif "content-length" not in lookup and "transfer-encoding" not in lookup:
            request.body = b""  # HTTP/1.1: a request with neither has no body, nothing to stream
        scope = request.scope
        request.caller = auth.identify(scope["headers"], _client_host(scope), self.settings)
        if request.caller.refusal:
            raise Refusal(401, request.caller.refusal)
        request.decision = decide(
            lookup,
            request.payload,
            self.settings,
            self.supermemory,
            self.privacy,
            request.caller,
            raw_body=request.body if request.path in CHAT_APIS else None,
        )

    async def _admit(self, request: ProxiedRequest) -> None:
        """The rate limit: 429 past it. A limiter that fails lets the request through."""
        if self.rate_limiter is None:
            return
        assert request.decision is not None
        user_id = request.decision.identity.user_id
        try:
            verdict = await self.rate_limiter.check(user_id)
        except Exception as exc:
            log_failure(logger, "rate limiter failed; request let through", exc)
            return
        limit = self.rate_limiter.bucket.requests_per_minute
        request.limit_headers = [
            (b"x-ratelimit-limit-requests", str(limit).encode()),
            (b"x-ratelimit-remaining-requests", str(verdict.remaining).encode()),
        ]
        if not verdict.allowed:
            self.metrics.rate_limited.inc()
            raise Refusal(
                429,
                f"rate limit for {user_id} reached ({limit} requests per minute)",
                retry_after=verdict.retry_after,
                headers=request.limit_headers,
            )

    async def _prepare(self, request: ProxiedRequest) -> MemoryTurn | None:
        """The body LiteLLM gets (asking for a stream's token counts, with memory
        injected) and the memory turn it opened.

        The failure boundary for bodies: whatever memory or usage cannot understand or
        re-encode (nested deeper than orjson writes, say) goes to LiteLLM as the client
        sent it, counted and logged, and LiteLLM answers.
        """
        try:
            outgoing, turn = await self._rewritten(request)
            if outgoing is not request.payload:
                request.body = orjson.dumps(outgoing)
        except Exception as exc:
            self.metrics.malformed_bodies.inc()
            log_failure(logger, "request body not rewritten; forwarded as sent", exc)
            return None
        return turn

    async def _rewritten(self, request: ProxiedRequest) -> tuple[Any, MemoryTurn | None]:
        """The payload to send and the memory turn; the payload itself when nothing changes."""
        payload = outgoing = request.payload
        decision = request.decision
        assert decision is not None
        if self._records_usage(request) and (
            asking := request_usage_in_stream(request.path, payload)
        ):
            outgoing = asking
        api = CHAT_APIS.get(request.path)
        if self.memory is None or not api or not isinstance(outgoing, dict):
            return outgoing, None
        identity = decision.identity
        scope = MemoryScope(
            identity.user_id,
            decision.session_id,
            decision.project,
            identity.client,
            decision.model,
            reads=decision.reads_memory,
            writes=decision.writes_memory,
            session_memory=decision.memory,
            privacy=decision.model_privacy,
        )
        turn = await self.memory.begin(api, payload, outgoing, scope)
        return (turn.body if turn else outgoing), turn

    async def _forward(
        self,
        request: ProxiedRequest,
        receive: Receive,
        send: Send,
        capture: AnswerCapture | None,
        memory_headers: Headers,
    ) -> ForwardResult:
        self.metrics.in_flight.inc()
        try:
            return await self.forwarder.forward(
                request.scope,
                receive,
                send,
                headers=self._upstream_headers(request),
                body=request.body,
                observer=capture,
                extra_headers=[
                    *request.limit_headers,
                    *memory_headers,
                    request_id_header(request),
                ],
                request_id=request.request_id,
            )
        finally:
            self.metrics.in_flight.dec()

    def _record(
        self,
        request: ProxiedRequest,
        turn: MemoryTurn | None,
        capture: AnswerCapture | None,
        result: ForwardResult,
    ) -> None:
        """Memory, usage, metrics and the log line, once the answer is relayed."""
        decision = request.decision
        assert decision is not None
        if capture is not None:
            capture.finish()
        if turn is not None and capture is not None and self.memory is not None:
            self.memory.finish(turn, capture)
        total = time.perf_counter() - request.started
        record = _usage_record(request, decision, result, capture, total)
        if self.usage is not None and self._records_usage(request):
            self.usage.record(record)
            self.live.publish(record)
        self.metrics.observe(decision.model, total, result.first_byte_seconds, result.outcome)
        fields = record.as_dict()
        del fields["time"]  # the log line has its own
        fields |= {
            "method": request.method,
            "outcome": result.outcome,
            "injected": turn.injected if turn else None,
            "recalled": turn.recalled if turn else None,
            "project": decision.project or None,
        }
        self.metrics.count(decision.identity.user_id, decision.model, result.status)
        log_request(fields)

    async def _refuse(
        self, request: ProxiedRequest, refusal: Refusal, receive: Receive, send: Send
    ) -> None:
        """Answer in the client's format, count and log: the one way a request ends early."""
        response = error_answer(request.path, refusal)
        response.raw_headers.append(request_id_header(request))
        await response(request.scope, receive, send)
        decision = request.decision
        user_id = decision.identity.user_id if decision else None
        model = decision.model if decision else None
        self.metrics.count(user_id, model, refusal.status)
        log_request(
            {
                "request_id": request.request_id,
                "method": request.method,
                "endpoint": request.path,
                "model": model,
                "user_id": user_id,
                "status": refusal.status,
            }
        )

    def _records_usage(self, request: ProxiedRequest) -> bool:
        return self.usage is not None and request.method == "POST"

    def _upstream_headers(self, request: ProxiedRequest) -> Headers:
        """The client's end-to-end headers with our request id, credentials and scope.

        A streamed body (None) keeps the client's Content-Length; a buffered one gets its
        own from the upstream client. No header carrying one of our client keys leaves,
        whoever the caller (client_key_guard.py).
        """
        caller, decision = request.caller, request.decision
        assert caller is not None and decision is not None
        replaced = _REPLACED_HEADERS if request.body is not None else _REPLACED_FOR_STREAMED_BODY
        outgoing = end_to_end_headers(request.scope["headers"], replaced)
        outgoing.append((b"x-request-id", request.request_id.encode()))
        outgoing = auth.with_upstream_credentials(outgoing, caller, self.settings.upstream_key)
        outgoing = scope_headers(
            outgoing,
            routed=decision.supermemory,
            user_id=decision.identity.user_id,
            session_id=decision.session_id,
            api_key=self.settings.supermemory_api_key,
        )
        return self._key_guard.without_keys(outgoing)


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _usage_record(
    request: ProxiedRequest,
    decision: RoutingDecision,
    result: ForwardResult,
    capture: AnswerCapture | None,
    total_seconds: float,
) -> UsageRecord:
    first_byte = result.first_byte_seconds
    payload = request.payload
    return UsageRecord(
        time=request.arrived,
        request_id=request.request_id,
        user_id=decision.identity.user_id,
        session_id=decision.session_id,
        client=decision.identity.client,
        model=decision.model,
        endpoint=request.path,
        status=result.status,
        stream=isinstance(payload, dict) and payload.get("stream") is True,
        upstream_ms=_ms(result.upstream_seconds),
        first_byte_ms=None if first_byte is None else _ms(first_byte),
        total_ms=_ms(total_seconds),
        prompt_tokens=capture.usage.prompt_tokens if capture else None,
        completion_tokens=capture.usage.completion_tokens if capture else None,
        cost=capture.cost if capture else None,
        finish_reason=_finish_reason(result, capture),
    )


def _finish_reason(result: ForwardResult, capture: AnswerCapture | None) -> str | None:
    """What the answer said, unless it never arrived whole: then how it ended."""
    if result.outcome != "complete":
        return result.outcome
    if capture is not None and capture.finish_reason:
        return capture.finish_reason
    return "error" if result.status >= 400 else None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _parse_json(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON (LiteLLM will say what is wrong)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
