"""An answer's token counts and cost (wire/answer.py): from JSON and from streams split
anywhere, with or without memory reading the message, without keeping a large answer
whole; LiteLLM's cost header."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memory_proxy.wire.answer import (
    USAGE_TAIL_BYTES,
    AnswerReader,
    TokenUsage,
    last_usage,
)
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES
from tests.wire.answer_support import (
    ANTHROPIC_STREAM_WITH_USAGE,
    JSON,
    OPENAI_STREAM_WITH_USAGE,
    OPENAI_USAGE,
    RESPONSES_STREAM_WITH_USAGE,
    SSE,
    json_values,
    read,
)


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES, None])
@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"choices": [{"message": {"content": "Hi"}}], "usage": OPENAI_USAGE}),
        json.dumps({"content": [], "usage": {"input_tokens": 11, "output_tokens": 7}}),
        json.dumps({"output": [], "usage": {"input_tokens": 11, "output_tokens": 7}}),
    ],
)
def test_token_counts_of_json_answers_with_or_without_memory(
    wire: ChatFormat | None, body: str
) -> None:
    answer = read(wire, JSON, body.encode())
    assert answer.usage == TokenUsage(prompt_tokens=11, completion_tokens=7)


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES, None])
@pytest.mark.parametrize(
    "stream", [OPENAI_STREAM_WITH_USAGE, ANTHROPIC_STREAM_WITH_USAGE, RESPONSES_STREAM_WITH_USAGE]
)
def test_token_counts_of_streams_split_anywhere(wire: ChatFormat | None, stream: bytes) -> None:
    for cut in range(len(stream) + 1):
        answer = read(wire, SSE, stream[:cut], stream[cut:])
        assert answer.usage == TokenUsage(prompt_tokens=11, completion_tokens=7), cut


def test_a_large_answer_is_not_kept_whole_for_its_token_counts() -> None:
    filler = json.dumps({"data": [{"embedding": [0.125] * 20_000}] * 10})
    body = filler[:-1] + ', "usage": {"prompt_tokens": 3, "total_tokens": 3}}'
    reader = AnswerReader(None)
    reader.start(200, JSON)
    encoded = body.encode()
    for start in range(0, len(encoded), 16_384):
        reader.feed(encoded[start : start + 16_384])
        assert len(reader._buffer) <= USAGE_TAIL_BYTES + 16_384
    assert reader.finish().usage == TokenUsage(prompt_tokens=3, completion_tokens=None)


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
    answer = read(CHAT, [*JSON, (b"x-litellm-response-cost", header)], b"{}")
    assert answer.cost == cost


_COUNTED = ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"]
_KEYS = st.sampled_from(["usage", "cache_read_input_tokens", "choices", "n", *_COUNTED])
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=0, max_value=2**70)  # beyond 64 bits too
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["usage", '"usage": {"x": 1}', "é", "\\u0075"])
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
# An answer's usage, most often where answers put it: its counts, anything beside.
_USAGE = st.dictionaries(st.sampled_from([*_COUNTED, "total_tokens"]), _SCALARS, max_size=4)


_PLAIN = {"ascii_only": True, "compact": False, "escaped_key": False, "repeated": None}


@settings(max_examples=400)
@example(body={}, usage={"prompt_tokens": 2**65, "completion_tokens": 3}, **_PLAIN)
@example(
    body={"usage": 0, "n": {"usage": {"prompt_tokens": 2}}}, usage={"prompt_tokens": 1}, **_PLAIN
)
@example(body={"n": 1}, usage={"prompt_tokens": 1}, **{**_PLAIN, "repeated": {"input_tokens": 2}})
@example(body={}, usage={"prompt_tokens": 1}, **{**_PLAIN, "escaped_key": True})
@given(
    body=st.dictionaries(_KEYS, _VALUES, max_size=5),
    usage=st.none() | _USAGE,
    ascii_only=st.booleans(),
    compact=st.booleans(),
    escaped_key=st.booleans(),
    repeated=st.none() | _USAGE | _VALUES,
)
def test_token_counts_are_those_of_the_last_usage_key_with_or_without_memory(
    body: dict[str, object],
    usage: dict[str, object] | None,
    ascii_only: bool,
    compact: bool,
    escaped_key: bool,
    repeated: object,
) -> None:
    """However the answer is read (its message wanted or not), its token counts are the
    last "usage" object's in its text: a key spelled with an escape, a key given twice,
    numbers beyond 64 bits."""
    if usage is not None:
        body = {**body, "usage": usage}
    separators = (",", ":") if compact else None
    text = json.dumps(body, ensure_ascii=ascii_only, separators=separators)
    if repeated is not None and body:  # the same key again, last
        text = text[:-1] + ', "usage": ' + json.dumps(repeated, ensure_ascii=ascii_only) + "}"
    if escaped_key:
        text = text.replace('"usage"', '"\\u0075sage"', 1)
    expected = TokenUsage()
    if (found := last_usage(text.encode())) is not None:
        expected.update(found)
    for wire in (CHAT, MESSAGES, RESPONSES, None):
        assert read(wire, JSON, text.encode()).usage == expected, wire


# Usage objects in any shape the two decoders could read apart: integers beyond 64 bits,
# floats, nested objects with a `usage` of their own, keys any format counts with.
COUNTS = st.one_of(
    st.integers(0, 10**6),
    st.integers(2**63, 2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
    st.booleans(),
    st.text(max_size=3),
)
USAGE_KEYS = ["prompt_tokens", "completion_tokens", "input_tokens", "output_tokens", "usage"]
USAGES = st.dictionaries(
    st.sampled_from(USAGE_KEYS),
    st.one_of(COUNTS, st.dictionaries(st.sampled_from(USAGE_KEYS), COUNTS, max_size=2)),
    max_size=4,
)
ANSWERS = st.fixed_dictionaries(
    {"choices": st.just([{"message": {"role": "assistant", "content": "Hi"}}])},
    optional={
        "usage": st.one_of(USAGES, COUNTS),
        "nested": st.fixed_dictionaries({"usage": USAGES}),
        "object": st.sampled_from(["usage", "chat.completion", "é"]),
    },
)


BIG = {"choices": [], "usage": {"prompt_tokens": 2**70}}  # orjson: a float
TWO = {"usage": {"prompt_tokens": 1}, "nested": {"usage": {"prompt_tokens": 2}}}


@settings(max_examples=400, deadline=None)
@example(BIG, True, False, None, CHAT)
@example(TWO, True, True, None, CHAT)  # the escaped top-level key: the nested one counts
@example(TWO, True, False, None, MESSAGES)  # two keys: the last counts
@given(
    ANSWERS,
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, 2]),
    st.sampled_from([CHAT, MESSAGES, RESPONSES, None]),
)
def test_token_counts_are_those_of_the_last_usage_in_the_text(
    answer: dict[str, object],
    ascii_only: bool,
    escaped_key: bool,
    indent: int | None,
    wire: ChatFormat | None,
) -> None:
    """Read from the decoded answer when memory decodes it (wire/answer.py's
    `_decoded_usage`), the counts are what `last_usage` finds in its text, as before."""
    text = json.dumps(answer, ensure_ascii=ascii_only, indent=indent)
    if escaped_key:  # the top-level key spelled with an escape: the text's usage is another
        text = text.replace('"usage"', '"\\u0075sage"', 1)
    expected = TokenUsage()
    if usage := last_usage(text.encode()):
        expected.update(usage)
    assert read(wire, JSON, text.encode()).usage == expected


null_usage_events = st.lists(
    st.fixed_dictionaries(
        {"usage": st.none() | st.just({"prompt_tokens": 3, "completion_tokens": 4})},
        optional={"x": json_values, "type": st.sampled_from(["usage", "ping"])},
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=80, deadline=None)
@given(events=null_usage_events, spaced=st.booleans())
def test_chunks_whose_usage_is_null_are_skipped_with_the_same_reading(
    events: list[dict[str, object]], spaced: bool
) -> None:
    """A chunk whose every `"usage"` is a key of null (LiteLLM's) is skipped when only usage
    is read: the same counts, reason and end as a reader that reads every event."""
    separators = (", ", ": ") if spaced else (",", ":")
    chunks = [
        b"data: " + json.dumps(event, separators=separators).encode() + b"\n\n" for event in events
    ]
    chunks.append(b"data: [DONE]\n\n")
    skipping = read(None, SSE, *chunks)
    with mock.patch.object(AnswerReader, "_skippable", lambda self, chunk: False):
        reading = read(None, SSE, *chunks)
    assert (skipping.usage, skipping.finish_reason, skipping.complete) == (
        reading.usage,
        reading.finish_reason,
        reading.complete,
    )
