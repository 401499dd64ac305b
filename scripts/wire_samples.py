"""Typical chat requests and answers (40 words) of the three chat APIs, in the shapes
LiteLLM sends them, SSE events a chunk each as a streaming upstream sends them: what
scripts/bench_wire.py measures the adapters on. They need nothing of the proxy but the
neutral message shape, so that an older commit can be measured on the same samples."""

from __future__ import annotations

import json
from typing import Any

from memory_proxy.records.messages import Message

WORDS = [f"word{i} " for i in range(40)]
TEXT = "".join(WORDS)
HISTORY: list[Message] = [
    {"role": "user", "content": "a question of a typical length " * 4},
    {"role": "assistant", "content": "an answer of a typical length " * 8},
] * 3
QUESTION = "How do we deploy the staging database on port 5433?"
BLOCK = (
    "<recalled-memories-0123456789ab>\nnote\n<memory>x</memory>\n</recalled-memories-0123456789ab>"
)
Event = tuple[str | None, Any]  # (SSE event name, data)
# What LiteLLM 1.106.2 answers with (a mock_response model, seen with curl), as the
# forwarder passes it on: each answer's reading starts with these.
LITELLM_HEADERS = [
    (b"date", b"Sun, 06 Dec 2026 07:04:34 GMT"),
    (b"x-litellm-call-id", b"fb4028e6-0820-41d3-8eab-535f804e7346"),
    (b"x-litellm-model-id", b"958b101cb4bea7cde58721fc38a5a486ae91fe2fc813e53e9ee2eff53e0e3c8f"),
    (b"x-litellm-model-name", b"openai/gpt-4o"),
    (b"x-litellm-model-api-base", b"https://api.openai.com"),
    (b"x-litellm-version", b"1.106.2"),
    (b"x-litellm-response-cost", b"0.00022500000000000002"),
    (b"x-litellm-response-cost-original", b"0.00022500000000000002"),
    (b"x-litellm-response-cost-discount-amount", b"0.0"),
    (b"x-litellm-response-cost-margin-amount", b"0.0"),
    (b"x-litellm-response-cost-margin-percent", b"0.0"),
    (b"x-litellm-response-cost-input", b"2.5e-05"),
    (b"x-litellm-response-cost-output", b"0.0002"),
    (b"x-litellm-response-cost-tool-usage", b"0.0"),
    (b"x-litellm-key-spend", b"0.00022500000000000002"),
    (b"x-litellm-response-duration-ms", b"794.5559024810791"),
    (b"x-litellm-callback-duration-ms", b"0.0"),
    (b"x-litellm-model-group", b"mock"),
    (b"x-litellm-attempted-retries", b"0"),
    (b"x-litellm-attempted-fallbacks", b"0"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-request-id", b"0123456789abcdef0123456789abcdef"),  # the proxy's own
]
HEADERS = {
    "json": [(b"content-type", b"application/json"), *LITELLM_HEADERS],
    "sse": [(b"content-type", b"text/event-stream; charset=utf-8"), *LITELLM_HEADERS],
}


def sse(events: list[Event]) -> list[bytes]:
    """An SSE chunk per event."""
    chunks = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        body = data if isinstance(data, str) else json.dumps(data)
        chunks.append(f"{head}data: {body}\n\n".encode())
    return chunks


def chat() -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
    base = {"id": "chatcmpl-1", "created": 1700000000, "model": "gpt-4o"}
    usage = {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}
    message = {"role": "assistant", "content": TEXT}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    answer = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
    chunk = {**base, "object": "chat.completion.chunk", "usage": None}
    events: list[Event] = [
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]})
        for w in WORDS
    ]
    events += [
        (None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        (None, {**chunk, "choices": [], "usage": usage}),
        (None, "[DONE]"),
    ]
    system = {"role": "system", "content": "Be brief."}
    request = {"model": "gpt-4o", "messages": [system, {"role": "user", "content": QUESTION}]}
    return request, answer, events


def messages() -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
    usage = {"input_tokens": 120, "cache_read_input_tokens": 0, "output_tokens": 40}
    answer: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "usage": usage,
    }
    opened = {**answer, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    text_block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    events: list[Event] = [
        ("message_start", {"type": "message_start", "message": opened}),
        ("content_block_start", text_block),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in WORDS
    ]
    ending = {"stop_reason": "end_turn", "stop_sequence": None}
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": ending, "usage": {"output_tokens": 40}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    request = {
        "model": "claude",
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": QUESTION}],
    }
    return request, answer, events


def responses() -> tuple[dict[str, Any], dict[str, Any], list[Event]]:
    usage = {"input_tokens": 120, "output_tokens": 40, "total_tokens": 160}
    part = {"type": "output_text", "text": TEXT, "annotations": []}
    item = {"id": "msg_1", "type": "message", "role": "assistant", "content": [part]}
    answer = {
        "id": "resp_1",
        "object": "response",
        "status": "completed",
        "model": "gpt-4o",
        "output": [item],
        "usage": usage,
        "incomplete_details": None,
    }
    started = {**answer, "status": "in_progress", "output": [], "usage": None}
    events: list[Event] = [
        ("response.created", {"type": "response.created", "response": started}),
        ("response.output_item.added", {"type": "response.output_item.added", "item": item}),
    ]
    events += [
        ("response.output_text.delta", {"type": "response.output_text.delta", "delta": w})
        for w in WORDS
    ]
    events += [
        ("response.output_item.done", {"type": "response.output_item.done", "item": item}),
        ("response.completed", {"type": "response.completed", "response": answer}),
    ]
    question = {"type": "input_text", "text": QUESTION}
    turn = {"type": "message", "role": "user", "content": [question]}
    request = {"model": "gpt-4o", "instructions": "Be brief.", "input": [turn]}
    return request, answer, events
