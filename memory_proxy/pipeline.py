"""One forwarded request, as a pipeline: identify → admit → prepare → forward → record.

- identify: read the JSON body, recognise the caller and what it asks for: one immutable
  `Identification` (identity/identification.py);
- admit: the rate limit, whose verdict the answer carries in its headers;
- prepare: the body LiteLLM gets (the stream's token counts asked for, memory injected);
- forward: the headers LiteLLM gets (upstream_headers.py), then the answer relayed byte for
  byte while it is read (wire/answer.py);
- record: memory, the usage record, metrics and the request's log line.

Each step takes what the earlier ones returned; nothing is filled in along the way. A step
that refuses the request raises a `Refusal` (errors.py); one place answers it in the
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
from memory_proxy.accounting.rate_limit import RateLimiter, admit
from memory_proxy.accounting.usage import UsageRecorder
from memory_proxy.browser_guard import is_json_content_type
from memory_proxy.errors import ClientDisconnected, Refusal, error_answer
from memory_proxy.forwarding.forwarder import (
    Forwarder,
    ForwardResult,
    answer_instead,
    read_request_body,
)
from memory_proxy.forwarding.header_safety import UnsafeHeader
from memory_proxy.forwarding.upstream import Headers
from memory_proxy.identity.identification import Identification, Identifier
from memory_proxy.logging_setup import log_failure, log_request
from memory_proxy.memory.request_memory import MemoryScope, MemoryTurn, RequestMemory
from memory_proxy.proxied_request import ProxiedRequest, RequestBody, header_lookup
from memory_proxy.records.usage import UsageRecord
from memory_proxy.upstream_headers import UpstreamHeaders
from memory_proxy.wire.answer import Answer, AnswerReader
from memory_proxy.wire.registry import CHAT_PATHS, WIRE_FORMATS, chat_format

logger = logging.getLogger("memory_proxy")

MAX_JSON_BODY_BYTES = 64 * 1024 * 1024
_STREAMED = RequestBody(None)
_EMPTY = RequestBody(b"")


class ProxyPipeline:
    """Runs each forwarded request through the steps; shares the app's parts."""

    def __init__(
        self,
        identifier: Identifier,
        upstream_headers: UpstreamHeaders,
        forwarder: Forwarder,
        metrics: Metrics,
        memory: RequestMemory | None,
        usage: UsageRecorder | None,
        rate_limiter: RateLimiter | None,
        live: LiveFeed,
    ) -> None:
        self.identifier = identifier
        self.upstream_headers = upstream_headers
        self.forwarder = forwarder
        self.metrics = metrics
        self.memory = memory
        self.usage = usage
        self.rate_limiter = rate_limiter
        self.live = live

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        lookup = header_lookup(scope)
        request_id = self.identifier.request_id(lookup)
        request = ProxiedRequest(
            scope,
            scope["path"],
            scope["method"],
            request_id,
            lookup,
            time.perf_counter(),
            time.time(),
        )
        who: Identification | None = None
        try:
            self.identifier.check_url(scope["raw_path"], scope["query_string"])
            body = await self._read_body(request, receive)
            who = self._identify(request, body)
            limit_headers = await self._admit(who) if self.rate_limiter is not None else []
        except ClientDisconnected:
            return
        except Refusal as refusal:
            await self._refuse(request, who, refusal, receive, send)
            return
        outgoing, turn = await self._prepare(request, body, who)
        parser = turn.answer_parser() if turn else None  # None: memory keeps no message
        reader = AnswerReader(parser) if parser or self._records_usage(request) else None
        answer_headers = [
            *limit_headers,
            *(turn.answer_headers() if turn else ()),
            request.request_id_header(),
        ]
        result = await self._forward(request, who, outgoing, receive, send, reader, answer_headers)
        self._record(request, who, body, turn, reader, result)

    async def _read_body(self, request: ProxiedRequest, receive: Receive) -> RequestBody:
        """The body, read whole when its content type says JSON exactly (the browser guard
        refused a chat API's other bodies); any other streams through. A body too large is
        refused (413, RequestTooLarge)."""
        lookup = request.lookup
        if request.method == "POST" and is_json_content_type(lookup.get("content-type", "")):
            raw = await read_request_body(receive, MAX_JSON_BODY_BYTES)
            payload = _parse_json(raw)
            if payload is None:
                self.metrics.malformed_bodies.inc()  # forwarded as is: LiteLLM says what
            return RequestBody(raw, payload)
        if "content-length" not in lookup and "transfer-encoding" not in lookup:
            return _EMPTY  # HTTP/1.1: a request with neither has no body, nothing to stream
        return _STREAMED

    def _identify(self, request: ProxiedRequest, body: RequestBody) -> Identification:
        """The caller and what it asks for; refusals for a caller with no key or
        conflicting keys (401) and unusable ids (400, InvalidIdentifier)."""
        scope = request.scope
        caller = self.identifier.caller(scope["headers"], _client_host(scope))
        return self.identifier.identify(
            request.request_id,
            request.lookup,
            caller,
            body.payload,
            raw_body=body.raw if request.path in CHAT_PATHS else None,
            llm_call=request.method == "POST" and request.path in WIRE_FORMATS,
        )

    async def _admit(self, who: Identification) -> Headers:
        """The rate limit: 429 past it; else the headers that tell the client where it
        stands."""
        return await admit(self.rate_limiter, who.user_id, self.metrics.rate_limited.inc)

    async def _prepare(
        self, request: ProxiedRequest, body: RequestBody, who: Identification
    ) -> tuple[bytes | None, MemoryTurn | None]:
        """The body LiteLLM gets (asking for a stream's token counts, with memory
        injected; None streams the client's through) and the memory turn it opened.

        The failure boundary for bodies: whatever memory or usage cannot understand or
        re-encode (nested deeper than orjson writes, say) goes to LiteLLM as the client
        sent it, counted and logged, and LiteLLM answers.
        """
        payload = body.payload
        turn = None
        try:
            outgoing = self._usage_asked(request, payload)
            memory = self.memory
            wire = chat_format(request.path) if memory is not None else None
            if memory is not None and wire is not None and isinstance(payload, dict):
                turn = await memory.begin(wire, payload, outgoing, _memory_scope(who))
                outgoing = turn.body if turn else outgoing
            if outgoing is not payload:
                return orjson.dumps(outgoing), turn
        except Exception as exc:
            self.metrics.malformed_bodies.inc()
            log_failure(logger, "request body not rewritten; forwarded as sent", exc)
            return body.raw, None
        return body.raw, turn

    def _usage_asked(self, request: ProxiedRequest, payload: Any) -> Any:
        """The payload asking for a stream's token counts when usage is recorded; the
        payload itself when nothing changes."""
        wire_format = WIRE_FORMATS.get(request.path)
        if wire_format is None or not isinstance(payload, dict):
            return payload
        if self._records_usage(request) and (asking := wire_format.ask_stream_usage(payload)):
            return asking
        return payload

    async def _forward(
        self,
        request: ProxiedRequest,
        who: Identification,
        body: bytes | None,
        receive: Receive,
        send: Send,
        reader: AnswerReader | None,
        answer_headers: Headers,
    ) -> ForwardResult:
        """The headers for LiteLLM, then the answer relayed with `answer_headers`. Headers
        that may not be sent (CR, LF or NUL) are answered with a 400 in LiteLLM's place."""
        scope = request.scope
        try:
            headers = self.upstream_headers.build(scope["headers"], who, streamed_body=body is None)
        except UnsafeHeader as unsafe:
            return await answer_instead(scope, receive, send, unsafe, answer_headers)
        self.metrics.forwarding(1)
        try:
            return await self.forwarder.forward(
                scope,
                receive,
                send,
                headers=headers,
                body=body,
                observer=reader,
                extra_headers=answer_headers,
                request_id=request.request_id,
            )
        finally:
            self.metrics.forwarding(-1)

    def _record(
        self,
        request: ProxiedRequest,
        who: Identification,
        body: RequestBody,
        turn: MemoryTurn | None,
        reader: AnswerReader | None,
        result: ForwardResult,
    ) -> None:
        """Memory, usage, metrics and the log line, once the answer is relayed: the
        answer read once, memory taking its message, accounting the rest."""
        answer = reader.finish() if reader is not None else None
        if turn is not None and answer is not None and self.memory is not None:
            self.memory.finish(turn, answer)
        total = time.perf_counter() - request.started
        record = _usage_record(request, who, body.payload, result, answer, total)
        record.recalled_tokens = turn.recalled_tokens if turn is not None else None
        if self.usage is not None and self._records_usage(request):
            self.usage.record(record)
            self.live.publish(record)
        self.metrics.observe(who.model, total, result.first_byte_seconds, result.outcome)
        fields = record.as_dict()
        del fields["time"]  # the log line has its own
        fields |= {
            "method": request.method,
            "outcome": result.outcome,
            "injected": turn.injected if turn else None,
            "recalled": turn.recalled if turn else None,
            "project": who.project or None,
        }
        self.metrics.count(who.user_id, who.model, result.status)
        log_request(fields)

    async def _refuse(
        self,
        request: ProxiedRequest,
        who: Identification | None,
        refusal: Refusal,
        receive: Receive,
        send: Send,
    ) -> None:
        """Answer in the client's format, count and log: the one way a request ends early.
        `who` is None when the request was refused before it was identified."""
        response = error_answer(request.path, refusal)
        response.raw_headers.append(request.request_id_header())
        await response(request.scope, receive, send)
        user_id = who.user_id if who else None
        model = who.model if who else None
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


def _memory_scope(who: Identification) -> MemoryScope:
    # MemoryScope(...) without its Python __new__ (keywords would cost twice as much)
    return tuple.__new__(
        MemoryScope,
        (
            who.user_id,
            who.session_id,
            who.project,
            who.identity.client,
            who.model,
            who.reads_memory,
            who.writes_memory,
            who.memory,
            who.model_privacy,
        ),
    )


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _usage_record(
    request: ProxiedRequest,
    who: Identification,
    payload: Any,
    result: ForwardResult,
    answer: Answer | None,
    total_seconds: float,
) -> UsageRecord:
    first_byte = result.first_byte_seconds
    # By position, in the order of UsageRecord's fields: keywords cost a dataclass's
    # __init__ 2.5 times as much (12.9k instructions, 5.1k so).
    return UsageRecord(
        request.arrived,  # time
        request.request_id,
        who.user_id,
        who.session_id,
        who.identity.client,
        who.model,
        request.path,  # endpoint
        result.status,
        isinstance(payload, dict) and payload.get("stream") is True,  # stream
        _ms(result.upstream_seconds),  # upstream_ms
        None if first_byte is None else _ms(first_byte),  # first_byte_ms
        _ms(total_seconds),  # total_ms
        answer.usage.prompt_tokens if answer else None,
        answer.usage.completion_tokens if answer else None,
        answer.cost if answer else None,
        _finish_reason(result, answer),
    )


def _finish_reason(result: ForwardResult, answer: Answer | None) -> str | None:
    """What the answer said, unless it never arrived whole: then how it ended."""
    if result.outcome != "complete":
        return result.outcome
    if answer is not None and answer.finish_reason:
        return answer.finish_reason
    return "error" if result.status >= 400 else None


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _parse_json(body: bytes) -> Any:
    """The decoded body, or None when it is not JSON (LiteLLM will say what is wrong)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
