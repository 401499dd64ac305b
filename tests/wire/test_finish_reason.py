"""Why an answer ended, read from JSON answers and streams in the three chat formats,
with memory's reading (an adapter's parser) or for usage only (None), however the bytes
are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.wire.answer import USAGE_TAIL_BYTES, Answer, AnswerReader, finish_reason
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES

SSE = [(b"content-type", b"text/event-stream")]
JSON = [(b"content-type", b"application/json")]
APIS: list[ChatFormat | None] = [CHAT, MESSAGES, RESPONSES, None]


def read(wire: ChatFormat | None, headers: list[tuple[bytes, bytes]], *chunks: bytes) -> Answer:
    reader = AnswerReader(wire.answer_parser() if wire else None)
    reader.start(200, headers)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def sse(*events: object) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


def openai_answer(reason: str | None, text: str = "Hi") -> dict[str, object]:
    choice = {"index": 0, "message": {"content": text}, "finish_reason": reason}
    return {"object": "chat.completion", "choices": [choice], "usage": {"prompt_tokens": 1}}


def openai_stream(reason: str, text: str = "Hi") -> bytes:
    chunk = {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}
    last = {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}
    return sse(chunk, last, {"choices": [], "usage": {"prompt_tokens": 1}}) + b"data: [DONE]\n\n"


def anthropic_stream(reason: str, text: str = "Hi") -> bytes:
    return sse(
        {"type": "message_start", "message": {"stop_reason": None, "usage": {}}},
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": text}},
        {"type": "message_delta", "delta": {"stop_reason": reason}, "usage": {}},
        {"type": "message_stop"},
    )


def responses_answer(status: str, reason: str | None = None) -> dict[str, object]:
    details = {"reason": reason} if reason else None
    return {"object": "response", "status": status, "incomplete_details": details, "output": []}


def responses_stream(status: str, reason: str | None = None) -> bytes:
    kind = "response.completed" if status == "completed" else f"response.{status}"
    return sse(
        {"type": "response.created", "response": {"status": "in_progress"}},
        {"type": "response.output_text.delta", "delta": "Hi"},
        {"type": kind, "response": responses_answer(status, reason)},
    )


ANSWERS = [
    (json.dumps(openai_answer("stop")).encode(), JSON, "stop"),
    (json.dumps(openai_answer("length")).encode(), JSON, "length"),
    (json.dumps(openai_answer("content_filter")).encode(), JSON, "content_filter"),
    (json.dumps({"type": "message", "content": [], "stop_reason": "max_tokens"}).encode(), JSON,
     "max_tokens"),
    (json.dumps(responses_answer("completed")).encode(), JSON, "completed"),
    (json.dumps(responses_answer("incomplete", "max_output_tokens")).encode(), JSON,
     "max_output_tokens"),
    (openai_stream("length"), SSE, "length"),
    (openai_stream("stop"), SSE, "stop"),
    (anthropic_stream("end_turn"), SSE, "end_turn"),
    (anthropic_stream("refusal"), SSE, "refusal"),
    (responses_stream("completed"), SSE, "completed"),
    (responses_stream("incomplete", "max_output_tokens"), SSE, "max_output_tokens"),
    (responses_stream("failed"), SSE, "failed"),
]  # fmt: skip


@pytest.mark.parametrize("wire", APIS)
@pytest.mark.parametrize(("body", "headers", "reason"), ANSWERS)
def test_the_reason_of_every_format_split_anywhere(
    wire: ChatFormat | None, body: bytes, headers: list[tuple[bytes, bytes]], reason: str
) -> None:
    for cut in range(0, len(body) + 1, 7):
        assert read(wire, headers, body[:cut], body[cut:]).finish_reason == reason, cut


def test_no_reason_when_the_answer_gives_none_or_is_cut_short() -> None:
    assert read(None, JSON, json.dumps(openai_answer(None)).encode()).finish_reason is None
    cut = openai_stream("stop")
    assert read(CHAT, SSE, cut[: cut.index(b'"stop"')]).finish_reason is None
    assert read(None, JSON, b"{not json").finish_reason is None
    assert finish_reason({"choices": "odd"}) is None
    assert finish_reason({"type": "message_delta", "delta": {"stop_reason": 5}}) is None


def test_a_reason_inside_the_answer_text_is_not_taken() -> None:
    text = 'say "finish_reason": "length" and "response.failed"'
    assert read(None, SSE, openai_stream("stop", text)).finish_reason == "stop"
    body = json.dumps(openai_answer("stop", text)).encode()
    assert read(None, JSON, body).finish_reason == "stop"


def test_the_reason_of_a_long_answer_kept_by_its_tail() -> None:
    body = json.dumps(openai_answer("length", "x" * (USAGE_TAIL_BYTES * 2))).encode()
    halves = body[: len(body) // 2], body[len(body) // 2 :]
    assert read(None, JSON, *halves).finish_reason == "length"


@settings(max_examples=150, deadline=None)
@given(
    maker=st.sampled_from([openai_stream, anthropic_stream]),
    reason=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20),
    text=st.text(max_size=40),
    cuts=st.lists(st.integers(0, 600), max_size=8),
    wire=st.sampled_from(APIS),
)
def test_any_stream_cut_anyhow_gives_its_reason(
    maker: object, reason: str, text: str, cuts: list[int], wire: ChatFormat | None
) -> None:
    assert callable(maker)
    body: bytes = maker(reason, text)
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    assert read(wire, SSE, *chunks).finish_reason == reason
