"""What the answer reader's tests share: content types, reading an answer whole, SSE."""

from __future__ import annotations

import json

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
