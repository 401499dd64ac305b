from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.memory.capture import (
    MAX_CAPTURED_BYTES,
    USAGE_TAIL_BYTES,
    AnswerCapture,
    TokenUsage,
    last_usage,
)
from memory_proxy.records.messages import ApiKind, well_formed

SSE = [(b"content-type", b"text/event-stream")]
JSON = [(b"content-type", b"application/json")]


def read(
    api: ApiKind | None, headers: list[tuple[bytes, bytes]], *chunks: bytes, status: int = 200
) -> AnswerCapture:
    """An answer fed to a capture as the forwarder does it: start, chunks, finish."""
    capture = AnswerCapture(api)
    capture.start(status, headers)
    for chunk in chunks:
        capture.feed(chunk)
    capture.finish()
    return capture


def openai_stream(words: list[str], done: bool = True) -> bytes:
    events = [
        {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in words
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


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
    ("api", "stream"),
    [
        ("openai", openai_stream(["Hel", "lo ", "wörld"])),
        ("anthropic", anthropic_stream(["Hel", "lo ", "wörld"])),
    ],
)
def test_streams_split_at_every_position_give_the_same_answer(api: ApiKind, stream: bytes) -> None:
    for cut in range(len(stream) + 1):
        capture = read(api, SSE, stream[:cut], stream[cut:])
        assert capture.answer() == {"role": "assistant", "content": "Hello wörld"}
        assert capture.complete


def test_a_stream_cut_short_is_incomplete() -> None:
    capture = read("openai", SSE, openai_stream(["par", "tial"], done=False))
    assert capture.answer() == {"role": "assistant", "content": "partial"}
    assert not capture.complete


def test_json_answers_in_both_formats() -> None:
    openai = read(
        "openai", JSON, b'{"choices": [{"message": {"role": "assistant", "content"', b': "hi"}}]}'
    )
    assert openai.answer() == {"role": "assistant", "content": "hi"}
    tool = {"type": "tool_use", "id": "toolu_1", "name": "grep", "input": {"q": "x"}}
    blocks = [{"type": "text", "text": "a"}, tool, {"type": "text", "text": "b"}]
    anthropic = read("anthropic", JSON, json.dumps({"content": blocks}).encode())
    assert anthropic.answer() == {
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
    capture = read(
        "openai", SSE, b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    )
    answer = capture.answer()
    assert answer is not None
    assert answer["tool_calls"] == [
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
    capture = read(
        "openai", headers, b'{"choices": [{"message": {"content": "x"}}]}', status=status
    )
    assert capture.answer() is None


GZIP = [*JSON, (b"content-encoding", b"gzip")]


@pytest.mark.parametrize("api", ["openai", None])
def test_a_gzipped_json_answer_is_read_split_anywhere(api: ApiKind | None) -> None:
    """LiteLLM gzips every whole JSON answer of 500 bytes or more for a client that accepts
    it, as the OpenAI and Anthropic SDKs do: the client gets the bytes as they were, and
    memory and usage read them decompressed."""
    answer = {"choices": [{"message": {"content": "Hi " * 300}}], "usage": OPENAI_USAGE}
    body = gzip.compress(json.dumps(answer).encode())
    for cut in range(0, len(body) + 1, 7):
        capture = read(api, GZIP, body[:cut], body[cut:])
        assert capture.usage == TokenUsage(prompt_tokens=11, completion_tokens=7)
        if api:
            assert capture.answer() == {"role": "assistant", "content": "Hi " * 300}


def test_a_corrupt_or_oversized_gzipped_answer_is_dropped_without_expanding_it() -> None:
    corrupt = read("openai", GZIP, b"\x1f\x8b not gzip at all")
    assert corrupt.answer() is None and corrupt.usage == TokenUsage()
    capture = AnswerCapture("openai")
    capture.start(200, GZIP)
    bomb = gzip.compress(b"[" + b" " * (MAX_CAPTURED_BYTES * 4) + b"]")
    capture.feed(bomb)
    assert len(capture._buffer) <= MAX_CAPTURED_BYTES
    capture.finish()
    assert capture.answer() is None


def responses_stream(words: list[str]) -> bytes:
    events = [{"type": "response.created"}]
    events += [{"type": "response.output_text.delta", "delta": w} for w in words]
    events.append({"type": "response.completed"})
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_responses_stream_split_anywhere_and_json() -> None:
    stream = responses_stream(["Hel", "lo"])
    for cut in range(len(stream) + 1):
        capture = read("responses", SSE, stream[:cut], stream[cut:])
        assert capture.answer() == {"role": "assistant", "content": "Hello"}
        assert capture.complete
    output = [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]
    plain = read("responses", JSON, json.dumps({"output": output}).encode())
    assert plain.answer() == {"role": "assistant", "content": "Hi"}


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


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses", None])
@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"choices": [{"message": {"content": "Hi"}}], "usage": OPENAI_USAGE}),
        json.dumps({"content": [], "usage": {"input_tokens": 11, "output_tokens": 7}}),
        json.dumps({"output": [], "usage": {"input_tokens": 11, "output_tokens": 7}}),
    ],
)
def test_token_counts_of_json_answers_with_or_without_memory(
    api: ApiKind | None, body: str
) -> None:
    capture = read(api, JSON, body.encode())
    assert capture.usage == TokenUsage(prompt_tokens=11, completion_tokens=7)


@pytest.mark.parametrize("api", ["openai", "anthropic", "responses", None])
@pytest.mark.parametrize(
    "stream", [OPENAI_STREAM_WITH_USAGE, ANTHROPIC_STREAM_WITH_USAGE, RESPONSES_STREAM_WITH_USAGE]
)
def test_token_counts_of_streams_split_anywhere(api: ApiKind | None, stream: bytes) -> None:
    for cut in range(len(stream) + 1):
        capture = read(api, SSE, stream[:cut], stream[cut:])
        assert capture.usage == TokenUsage(prompt_tokens=11, completion_tokens=7), cut


def test_a_large_answer_is_not_kept_whole_for_its_token_counts() -> None:
    filler = json.dumps({"data": [{"embedding": [0.125] * 20_000}] * 10})
    body = filler[:-1] + ', "usage": {"prompt_tokens": 3, "total_tokens": 3}}'
    capture = AnswerCapture(None)
    capture.start(200, JSON)
    encoded = body.encode()
    for start in range(0, len(encoded), 16_384):
        capture.feed(encoded[start : start + 16_384])
        assert len(capture._buffer) <= USAGE_TAIL_BYTES + 16_384
    capture.finish()
    assert capture.usage == TokenUsage(prompt_tokens=3, completion_tokens=None)


def test_anthropic_cached_prompt_tokens_count_as_prompt_tokens() -> None:
    usage = TokenUsage()
    usage.update(
        {
            "input_tokens": 5,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 1000,
            "output_tokens": 9,
        }
    )
    assert usage == TokenUsage(prompt_tokens=1105, completion_tokens=9)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (b'{"usage": {"prompt_tokens": 1}}', {"prompt_tokens": 1}),
        (b'{"a": {"usage": {"x": 1}}, "usage": {"x": 2}}', {"x": 2}),
        (b'{"content": "say \\"usage\\": {\\"x\\": 9}", "usage": null}', None),
        (b'{"content": "the word \\"usage\\"", "usage": {"x": 3}, "n": "usage"}', {"x": 3}),
        (b'{"usage": {"x": 1', None),
        (b"no json at all", None),
    ],
)
def test_last_usage_finds_the_last_usage_key_only(text: bytes, found: object) -> None:
    assert last_usage(text) == found


@pytest.mark.parametrize(
    ("header", "cost"), [(b"0.000123", 0.000123), (b"None", None), (b"nan", None), (b"", None)]
)
def test_litellm_cost_header(header: bytes, cost: float | None) -> None:
    capture = read("openai", [*JSON, (b"x-litellm-response-cost", header)], b"{}")
    assert capture.cost == cost


def openai_stream_with_usage(words: list[str], prompt: int, completion: int) -> bytes:
    events: list[dict[str, object]] = [
        {"choices": [{"index": 0, "delta": {"content": word}}], "usage": None} for word in words
    ]
    events.append(
        {"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    )
    return sse(*events) + b"data: [DONE]\n\n"


def anthropic_stream_with_usage(words: list[str], prompt: int, completion: int) -> bytes:
    return sse(
        {
            "type": "message_start",
            "message": {"usage": {"input_tokens": prompt, "output_tokens": 1}},
        },
        *(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": word}}
            for word in words
        ),
        {"type": "message_delta", "usage": {"output_tokens": completion}},
        {"type": "message_stop"},
    )


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=200, deadline=None)
@given(
    api=st.sampled_from(["openai", "anthropic"]),
    words=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8),
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**6),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    with_text=st.booleans(),
)
def test_any_stream_cut_anyhow_gives_its_text_and_counts(
    api: ApiKind,
    words: list[str],
    prompt: int,
    completion: int,
    cuts: list[int],
    with_text: bool,
) -> None:
    """Whatever the text (quotes, newlines, "usage" itself) and however the bytes arrive."""
    make = openai_stream_with_usage if api == "openai" else anthropic_stream_with_usage
    capture = read(api if with_text else None, SSE, *chunked(make(words, prompt, completion), cuts))
    assert capture.usage == TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
    if with_text:
        text = "".join(words)
        # A blank answer is no message (it would store an empty assistant turn).
        expected = {"role": "assistant", "content": text} if text.strip() else None
        assert capture.answer() == expected
        assert capture.complete


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
        capture = read("anthropic", SSE, stream[:cut], stream[cut:])
        assert capture.answer() == {
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
ODD_ANSWERS: list[tuple[ApiKind, dict[str, Any]]] = [
    ("openai", {"choices": {"0": {}}}),
    ("openai", {"choices": ["not a choice"]}),
    ("openai", {"choices": [{"message": {"content": 5, "tool_calls": [{"id": ["x"]}]}}]}),
    ("openai", {"choices": [{"message": "text"}]}),
    ("anthropic", {"content": [{"type": "text", "text": None}]}),
    ("anthropic", {"content": {"type": "text"}}),
    ("anthropic", {"content": [{"type": "tool_use", "id": 1, "input": []}]}),
    ("responses", {"output": {"type": "message"}}),
    ("responses", {"output": ["item"]}),
    ("responses", {"output": [{"type": "message", "content": [{"type": "output_text"}, 1]}]}),
    (
        "responses",
        {"output": [{"type": "message", "content": [{"type": "output_text", "text": 2}]}]},
    ),
]
ODD_EVENTS: list[tuple[ApiKind, dict[str, Any]]] = [
    ("openai", {"choices": {"a": 1}}),
    ("openai", {"choices": ["x", {"delta": "text"}, {"delta": {"content": ["x"]}}]}),
    ("openai", {"choices": [{"delta": {"tool_calls": [{"index": {"a": 1}}, 3]}}]}),
    ("openai", {"choices": [{"delta": {"tool_calls": [{"function": {"name": 1}}]}}]}),
    ("responses", {"type": "response.output_text.delta", "delta": None}),
    ("anthropic", {"type": "content_block_start", "index": [0], "content_block": {}}),
    ("anthropic", {"type": "content_block_start", "content_block": {"type": "tool_use", "id": 1}}),
    ("anthropic", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 1}}),
    ("anthropic", {"type": "content_block_delta", "delta": {"type": "input_json_delta"}}),
    ("anthropic", {"type": "content_block_delta", "delta": "text"}),
]


@pytest.mark.parametrize(("api", "answer"), ODD_ANSWERS)
def test_odd_json_answers_give_no_message_but_their_usage(
    api: ApiKind, answer: dict[str, Any]
) -> None:
    capture = read(api, JSON, json.dumps({**answer, "usage": USAGE}).encode())
    assert capture.answer() is None  # not even an empty assistant turn
    assert capture.usage == TokenUsage(3, 4)


@pytest.mark.parametrize(("api", "event"), ODD_EVENTS)
def test_odd_stream_events_are_skipped(api: ApiKind, event: object) -> None:
    capture = read(api, SSE, sse(event, {"choices": [], "usage": USAGE}))
    assert capture.answer() is None
    assert capture.usage == TokenUsage(3, 4)


def test_a_usage_nested_too_deep_to_decode_is_no_usage() -> None:
    deep = b'{"usage": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    assert read(None, JSON, deep).usage == TokenUsage()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
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
    api=st.sampled_from(["openai", "anthropic", "responses", None]),
    events=st.lists(odd_events | json_values, max_size=6),
    answer=json_values,
)
def test_no_answer_shape_makes_the_capture_raise(
    api: ApiKind | None, events: list[object], answer: object
) -> None:
    """Whatever LiteLLM sends, the capture reads what it can and stores nothing odd: no
    message without text or a tool call."""
    for headers, body in ((SSE, sse(*events)), (JSON, json.dumps(answer).encode())):
        capture = read(api, headers, body)
        message = capture.answer()
        assert message is None or (
            well_formed(message) and (message["content"].strip() or message.get("tool_calls"))
        )


def test_a_reading_that_fails_stops_the_capture_not_the_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unforeseen(self: AnswerCapture, data: bytes) -> None:
        raise KeyError("a shape nobody foresaw")

    monkeypatch.setattr(AnswerCapture, "_on_data", unforeseen)
    monkeypatch.setattr(AnswerCapture, "_read_message", lambda self, body: unforeseen(self, b""))
    assert read("openai", SSE, openai_stream(["a", "b"])).answer() is None
    assert read("openai", JSON, json.dumps({"choices": []}).encode()).answer() is None
