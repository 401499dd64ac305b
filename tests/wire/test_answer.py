"""Reading an answer (wire/answer.py): its message from JSON and from streams split at
every position, gzip, tool calls, odd answers and events skipped, a reading that fails
stopping the capture and not the request (token counts and cost: test_answer_usage)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.messages import well_formed
from memory_proxy.wire.answer import (
    MAX_CAPTURED_BYTES,
    AnswerReader,
    TokenUsage,
)
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.chat import ChatAnswerParser
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES
from tests.wire.answer_support import (
    JSON,
    OPENAI_USAGE,
    SSE,
    json_values,
    openai_stream,
    read,
    sse,
)


def anthropic_stream(words: list[str]) -> bytes:
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start"})]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}},
        )
        for w in words
    ]
    events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(
        f"event: {name}\r\ndata: {json.dumps(data)}\r\n\r\n".encode() for name, data in events
    )


@pytest.mark.parametrize(
    ("wire", "stream"),
    [
        (CHAT, openai_stream(["Hel", "lo ", "wörld"])),
        (MESSAGES, anthropic_stream(["Hel", "lo ", "wörld"])),
    ],
)
def test_streams_split_at_every_position_give_the_same_answer(
    wire: ChatFormat, stream: bytes
) -> None:
    for cut in range(len(stream) + 1):
        answer = read(wire, SSE, stream[:cut], stream[cut:])
        assert answer.message == {"role": "assistant", "content": "Hello wörld"}
        assert answer.complete


def test_a_stream_cut_short_is_incomplete() -> None:
    answer = read(CHAT, SSE, openai_stream(["par", "tial"], done=False))
    assert answer.message == {"role": "assistant", "content": "partial"}
    assert not answer.complete


def test_json_answers_in_both_formats() -> None:
    openai = read(
        CHAT, JSON, b'{"choices": [{"message": {"role": "assistant", "content"', b': "hi"}}]}'
    )
    assert openai.message == {"role": "assistant", "content": "hi"}
    tool = {"type": "tool_use", "id": "toolu_1", "name": "grep", "input": {"q": "x"}}
    blocks = [{"type": "text", "text": "a"}, tool, {"type": "text", "text": "b"}]
    anthropic = read(MESSAGES, JSON, json.dumps({"content": blocks}).encode())
    assert anthropic.message == {
        "role": "assistant",
        "content": "ab",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "grep", "arguments": '{"q": "x"}'},
            }
        ],
    }


def test_streamed_tool_calls_are_assembled() -> None:
    events = [
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "c1",
                                "function": {"name": "get_", "arguments": '{"a"'},
                            }
                        ]
                    }
                }
            ]
        },
        {
            "choices": [
                {
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "function": {"name": "weather", "arguments": ": 1}"}}
                        ]
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        },
    ]
    message = read(
        CHAT, SSE, b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    ).message
    assert message is not None
    assert message["tool_calls"] == [
        {
            "type": "function",
            "id": "c1",
            "function": {"name": "get_weather", "arguments": '{"a": 1}'},
        }
    ]


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (500, JSON),
        (200, [*JSON, (b"content-encoding", b"br")]),
        (200, [(b"content-type", b"text/plain")]),
    ],
)
def test_errors_unknown_encodings_and_unknown_answers_are_not_captured(
    status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    answer = read(CHAT, headers, b'{"choices": [{"message": {"content": "x"}}]}', status=status)
    assert answer.message is None


GZIP = [*JSON, (b"content-encoding", b"gzip")]


@pytest.mark.parametrize("wire", [CHAT, None])
def test_a_gzipped_json_answer_is_read_split_anywhere(wire: ChatFormat | None) -> None:
    """LiteLLM gzips every whole JSON answer of 500 bytes or more for a client that accepts
    it, as the OpenAI and Anthropic SDKs do: the client gets the bytes as they were, and
    memory and usage read them decompressed."""
    whole = {"choices": [{"message": {"content": "Hi " * 300}}], "usage": OPENAI_USAGE}
    body = gzip.compress(json.dumps(whole).encode())
    for cut in range(0, len(body) + 1, 7):
        answer = read(wire, GZIP, body[:cut], body[cut:])
        assert answer.usage == TokenUsage(prompt_tokens=11, completion_tokens=7)
        if wire:
            assert answer.message == {"role": "assistant", "content": "Hi " * 300}


def test_a_corrupt_or_oversized_gzipped_answer_is_dropped_without_expanding_it() -> None:
    corrupt = read(CHAT, GZIP, b"\x1f\x8b not gzip at all")
    assert corrupt.message is None and corrupt.usage == TokenUsage()
    reader = AnswerReader(CHAT.answer_parser())
    reader.start(200, GZIP)
    bomb = gzip.compress(b"[" + b" " * (MAX_CAPTURED_BYTES * 4) + b"]")
    reader.feed(bomb)
    assert len(reader._buffer) <= MAX_CAPTURED_BYTES
    assert reader.finish().message is None


def responses_stream(words: list[str]) -> bytes:
    events = [{"type": "response.created"}]
    events += [{"type": "response.output_text.delta", "delta": w} for w in words]
    events.append({"type": "response.completed"})
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_responses_stream_split_anywhere_and_json() -> None:
    stream = responses_stream(["Hel", "lo"])
    for cut in range(len(stream) + 1):
        answer = read(RESPONSES, SSE, stream[:cut], stream[cut:])
        assert answer.message == {"role": "assistant", "content": "Hello"}
        assert answer.complete
    output = [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]
    plain = read(RESPONSES, JSON, json.dumps({"output": output}).encode())
    assert plain.message == {"role": "assistant", "content": "Hi"}


def test_anthropic_streamed_tool_use_is_assembled() -> None:
    stream = sse(
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hm"}},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_9", "name": "grep", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"q": '},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"x"}'},
        },
        {"type": "message_stop"},
    )
    for cut in range(0, len(stream) + 1, 7):
        answer = read(MESSAGES, SSE, stream[:cut], stream[cut:])
        assert answer.message == {
            "role": "assistant",
            "content": "Hm",
            "tool_calls": [
                {
                    "id": "toolu_9",
                    "type": "function",
                    "function": {"name": "grep", "arguments": '{"q": "x"}'},
                }
            ],
        }


USAGE = {"prompt_tokens": 3, "completion_tokens": 4}
ODD_ANSWERS: list[tuple[ChatFormat, dict[str, Any]]] = [
    (CHAT, {"choices": {"0": {}}}),
    (CHAT, {"choices": ["not a choice"]}),
    (CHAT, {"choices": [{"message": {"content": 5, "tool_calls": [{"id": ["x"]}]}}]}),
    (CHAT, {"choices": [{"message": "text"}]}),
    (MESSAGES, {"content": [{"type": "text", "text": None}]}),
    (MESSAGES, {"content": {"type": "text"}}),
    (MESSAGES, {"content": [{"type": "tool_use", "id": 1, "input": []}]}),
    (RESPONSES, {"output": {"type": "message"}}),
    (RESPONSES, {"output": ["item"]}),
    (RESPONSES, {"output": [{"type": "message", "content": [{"type": "output_text"}, 1]}]}),
    (
        RESPONSES,
        {"output": [{"type": "message", "content": [{"type": "output_text", "text": 2}]}]},
    ),
]
ODD_EVENTS: list[tuple[ChatFormat, dict[str, Any]]] = [
    (CHAT, {"choices": {"a": 1}}),
    (CHAT, {"choices": ["x", {"delta": "text"}, {"delta": {"content": ["x"]}}]}),
    (CHAT, {"choices": [{"delta": {"tool_calls": [{"index": {"a": 1}}, 3]}}]}),
    (CHAT, {"choices": [{"delta": {"tool_calls": [{"function": {"name": 1}}]}}]}),
    (RESPONSES, {"type": "response.output_text.delta", "delta": None}),
    (MESSAGES, {"type": "content_block_start", "index": [0], "content_block": {}}),
    (MESSAGES, {"type": "content_block_start", "content_block": {"type": "tool_use", "id": 1}}),
    (MESSAGES, {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 1}}),
    (MESSAGES, {"type": "content_block_delta", "delta": {"type": "input_json_delta"}}),
    (MESSAGES, {"type": "content_block_delta", "delta": "text"}),
]


@pytest.mark.parametrize(("wire", "odd"), ODD_ANSWERS)
def test_odd_json_answers_give_no_message_but_their_usage(
    wire: ChatFormat, odd: dict[str, Any]
) -> None:
    answer = read(wire, JSON, json.dumps({**odd, "usage": USAGE}).encode())
    assert answer.message is None  # not even an empty assistant turn
    assert answer.usage == TokenUsage(3, 4)


@pytest.mark.parametrize(("wire", "event"), ODD_EVENTS)
def test_odd_stream_events_are_skipped(wire: ChatFormat, event: object) -> None:
    answer = read(wire, SSE, sse(event, {"choices": [], "usage": USAGE}))
    assert answer.message is None
    assert answer.usage == TokenUsage(3, 4)


def test_a_usage_nested_too_deep_to_decode_is_no_usage() -> None:
    deep = b'{"usage": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert read(None, JSON, deep).usage == TokenUsage()


event_types = st.sampled_from(
    [
        "content_block_start",
        "content_block_delta",
        "response.output_text.delta",
        "response.completed",
        "message_stop",
    ]
)
odd_events = st.fixed_dictionaries(
    {},
    optional={
        "type": event_types | json_values,
        "index": st.integers(0, 2) | json_values,
        "choices": st.lists(
            st.fixed_dictionaries({}, optional={"delta": json_values, "finish_reason": json_values})
        )
        | json_values,
        "delta": st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["text_delta", "input_json_delta"]) | json_values,
                "text": json_values,
                "partial_json": json_values,
                "content": json_values,
                "tool_calls": json_values,
            },
        )
        | json_values,
        "content_block": st.fixed_dictionaries(
            {"type": st.just("tool_use") | json_values},
            optional={"id": json_values, "name": json_values},
        )
        | json_values,
        "usage": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    wire=st.sampled_from([CHAT, MESSAGES, RESPONSES, None]),
    events=st.lists(odd_events | json_values, max_size=6),
    answer=json_values,
)
def test_no_answer_shape_makes_the_capture_raise(
    wire: ChatFormat | None, events: list[object], answer: object
) -> None:
    """Whatever LiteLLM sends, the reader reads what it can and stores nothing odd: no
    message without text or a tool call."""
    for headers, body in ((SSE, sse(*events)), (JSON, json.dumps(answer).encode())):
        answer = read(wire, headers, body)
        message = answer.message
        assert message is None or (
            well_formed(message) and (message["content"].strip() or message.get("tool_calls"))
        )


def test_a_reading_that_fails_stops_the_capture_not_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unforeseen(self: ChatAnswerParser, part: dict[str, Any]) -> None:
        raise KeyError("a shape nobody foresaw")

    monkeypatch.setattr(ChatAnswerParser, "read_event", unforeseen)
    monkeypatch.setattr(ChatAnswerParser, "read_body", unforeseen)
    assert read(CHAT, SSE, openai_stream(["a", "b"])).message is None
    assert read(CHAT, JSON, json.dumps({"choices": []}).encode()).message is None
