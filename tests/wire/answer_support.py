"""What the answer reader's tests share: content types, reading an answer whole, SSE."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from memory_proxy.wire.answer import (
    Answer,
    AnswerReader,
)
from memory_proxy.wire.base import ChatFormat

SSE = [(b"content-type", b"text/event-stream")]
JSON = [(b"content-type", b"application/json")]


def read(
    wire: ChatFormat | None,
    headers: list[tuple[bytes, bytes]],
    *chunks: bytes,
    status: int = 200,
) -> Answer:
    """An answer fed to a reader as the forwarder does it: start, chunks, finish; with
    `wire`'s parser, as when memory keeps the message, or without (usage only)."""
    reader = AnswerReader(wire.answer_parser() if wire else None)
    reader.start(status, headers)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def sse(*events: object) -> bytes:
    """Any JSON values as SSE events: LiteLLM's, or odd ones."""
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


OPENAI_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}


# What LiteLLM streams when asked for usage: null on every chunk, the counts on the last.
OPENAI_STREAM_WITH_USAGE = (
    sse(
        {"choices": [{"index": 0, "delta": {"content": "Hi"}}], "usage": None},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": None},
        {"choices": [], "usage": OPENAI_USAGE},
    )
    + b"data: [DONE]\n\n"
)


ANTHROPIC_STREAM_WITH_USAGE = sse(
    {"type": "message_start", "message": {"usage": {"input_tokens": 11, "output_tokens": 1}}},
    {"type": "content_block_delta", "delta": {"type": "text_delta", "text": "Hi"}},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
    {"type": "message_stop"},
)


RESPONSES_STREAM_WITH_USAGE = sse(
    {"type": "response.output_text.delta", "delta": "Hi"},
    {
        "type": "response.completed",
        "response": {"output": [], "usage": {"input_tokens": 11, "output_tokens": 7}},
    },
)


def openai_stream(words: list[str], done: bool = True) -> bytes:
    events = [
        {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in words
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


# Any JSON value, small: what an answer or an event may hold where a shape is expected.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
