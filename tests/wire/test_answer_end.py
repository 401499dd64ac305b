"""When a streamed answer has ended (wire/answer.py): once its last event was fed, however
the stream is split, and not on text that merely names a last event."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.wire.answer import (
    AnswerReader,
)
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES
from tests.wire.answer_support import (
    ANTHROPIC_STREAM_WITH_USAGE,
    OPENAI_STREAM_WITH_USAGE,
    RESPONSES_STREAM_WITH_USAGE,
    SSE,
    openai_stream,
    sse,
)


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES, None])
@pytest.mark.parametrize(
    "stream", [OPENAI_STREAM_WITH_USAGE, ANTHROPIC_STREAM_WITH_USAGE, RESPONSES_STREAM_WITH_USAGE]
)
@given(cuts=st.lists(st.integers(min_value=0), max_size=4))
def test_a_stream_has_ended_once_its_last_event_was_fed_however_split(
    wire: ChatFormat | None, stream: bytes, cuts: list[int]
) -> None:
    """What lets the forwarder count a client leaving right after the last event (Codex
    does) as a complete answer: with or without memory's parser, never before it."""
    positions = sorted({0, *(cut % (len(stream) + 1) for cut in cuts), len(stream)})
    reader = AnswerReader(wire.answer_parser() if wire else None)
    reader.start(200, SSE)
    for start, end in itertools.pairwise(positions):
        reader.feed(stream[start:end])
        assert reader.ended == (end == len(stream)), (start, end)


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES, None])
def test_text_that_names_a_last_event_does_not_end_a_stream(wire: ChatFormat | None) -> None:
    words = ["[DONE]", '"message_stop"', '"response.completed"', "data: [DONE]\n\n"]
    reader = AnswerReader(wire.answer_parser() if wire else None)
    reader.start(200, SSE)
    reader.feed(openai_stream(words, done=False))
    for word in words:
        reader.feed(
            sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": word}})
        )
        reader.feed(sse({"type": "response.output_text.delta", "delta": word}))
    assert not reader.ended
