"""An answer kept for its message to be read elsewhere (wire/kept.py's `read_kept`, the
index process's reading for a request naming no session): the reader that keeps it reads
the same usage, cost and finish reason as one that reads the message, and the message read
from the kept bytes is the one that reader assembles, whatever the format, JSON or SSE,
however the bytes were split, gzipped, cut short, malformed, or too long to keep."""

from __future__ import annotations

import gzip
import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from memory_proxy.wire import answer as answer_module
from memory_proxy.wire.answer import Answer, AnswerReader
from memory_proxy.wire.base import AnswerParser, ChatFormat
from memory_proxy.wire.kept import read_kept
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES
from scripts import wire_samples
from tests.wire.answer_support import JSON, SSE

SAMPLES = {"chat": wire_samples.chat, "messages": wire_samples.messages}
SAMPLES["responses"] = wire_samples.responses
FORMATS = {"chat": CHAT, "messages": MESSAGES, "responses": RESPONSES}
TOOL_CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def answer_bytes(name: str, mode: str, variant: str) -> bytes:
    """A format's sample answer (scripts/wire_samples.py), JSON or SSE, as sent, or with
    a tool call in it (chat's), its text's JSON broken, or a text longer than the usage's
    tail (USAGE_TAIL_BYTES) in one part."""
    _request, body, events = SAMPLES[name]()
    if variant == "tool call" and name == "chat":
        body["choices"][0]["message"]["tool_calls"] = [TOOL_CALL]
        events.insert(1, (None, {"choices": [{"index": 0, "delta": {"tool_calls": [TOOL_CALL]}}]}))
    data = json.dumps(body).encode() if mode == "json" else b"".join(wire_samples.sse(events))
    if variant == "malformed":
        data = data.replace(b'"', b"'", 3)
    if variant == "long":
        data = data.replace(b"word1 ", b"word1 " * 20_000)
    return data


def read(
    reading: AnswerParser | ChatFormat | None, mode: str, chunks: list[bytes], gz: bool
) -> Answer:
    headers = list(JSON if mode == "json" else SSE)
    if gz:
        headers.append((b"content-encoding", b"gzip"))
        chunks = [gzip.compress(b"".join(chunks))]
    reader = AnswerReader(reading)
    reader.start(200, [*headers, (b"x-litellm-response-cost", b"0.5")])
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    at = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *at], [*at, len(data)], strict=True)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(FORMATS)),
    mode=st.sampled_from(["json", "sse"]),
    variant=st.sampled_from(["as sent", "tool call", "malformed", "long"]),
    cut_short=st.none() | st.integers(min_value=0),
    cuts=st.lists(st.integers(min_value=0), max_size=6),
    kept_bytes=st.sampled_from([0, 1, 200, 1000, 100_000, answer_module.KEPT_BYTES]),
    gz=st.booleans(),
)
@example("chat", "json", "long", None, [5000], answer_module.KEPT_BYTES, False)
@example("messages", "sse", "long", None, [], 100_000, False)  # read here past 100 kB
@example("responses", "sse", "as sent", None, [700, 3], 1000, True)
def test_the_kept_answer_says_what_the_reader_with_its_parser_says(
    name: str,
    mode: str,
    variant: str,
    cut_short: int | None,
    cuts: list[int],
    kept_bytes: int,
    gz: bool,
) -> None:
    wire = FORMATS[name]
    data = answer_bytes(name, mode, variant)
    if cut_short is not None:
        data = data[: cut_short % (len(data) + 1)]
    chunks = split(data, cuts)
    with mock.patch.object(answer_module, "KEPT_BYTES", kept_bytes):
        kept = read(wire, mode, chunks, gz)
    whole = read(wire.answer_parser(), mode, chunks, gz)
    assert (kept.usage, kept.cost, kept.finish_reason) == (
        whole.usage,
        whole.cost,
        whole.finish_reason,
    )
    if kept.kept is None:  # too long to keep (or nothing read): its message read here
        assert kept_bytes < len(data) or kept.message is None
        assert (kept.message, kept.complete) == (whole.message, whole.complete)
    else:
        assert kept.message is None and len(kept.kept[2]) <= kept_bytes
        assert read_kept(kept.kept) == (whole.message, whole.complete)


@pytest.mark.parametrize("mode", ["json", "sse"])
def test_a_kept_answer_is_read_as_a_plain_tuple(mode: str) -> None:
    """What marshal gives the index process back: a tuple of str, str and bytes."""
    data = answer_bytes("chat", mode, "as sent")
    kept = read(CHAT, mode, [data], gz=False).kept
    assert kept is not None and type(kept) is tuple
    assert [type(part) for part in kept] == [str, str, bytes]
    message: Any = read_kept(list(kept))[0]
    assert message["content"] == wire_samples.TEXT


def test_an_answer_that_is_neither_json_nor_sse_keeps_nothing() -> None:
    reader = AnswerReader(CHAT)
    reader.start(200, [(b"content-type", b"text/plain")])
    reader.feed(b"hello")
    assert reader.finish().kept is None
