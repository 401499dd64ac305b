"""The seam: the same scenarios run over every chat adapter — turns to the neutral shape
and back, the human text of the latest turn, where a recalled block goes, stored history
merged into a request, and an answer read from JSON or from SSE cut anywhere. A fourth
API passes these by writing its adapter and a `Speaker` here (how its client and its
answers talk), nothing else."""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.memory.injection import ContextLimits, prepare
from memory_proxy.memory.question import last_human_turn
from memory_proxy.records.messages import Message
from memory_proxy.wire.answer import Answer, AnswerReader, TokenUsage
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES, WIRE_FORMATS

SSE = [(b"content-type", b"text/event-stream"), (b"x-litellm-response-cost", b"0.25")]
JSON = [(b"content-type", b"application/json"), (b"x-litellm-response-cost", b"0.25")]
BLOCK = "<recalled-memories-0123456789ab>\nnote\n</recalled-memories-0123456789ab>"
LIMITS = ContextLimits(max_messages=50, max_tokens=100_000)


class Speaker(ABC):
    """How a client of one API writes its requests, and how LiteLLM answers it."""

    wire: ChatFormat
    reason: str  # why a finished answer ended, in this API's words

    @abstractmethod
    def request(self, system: str, turns: list[tuple[str, str]]) -> dict[str, Any]: ...

    @abstractmethod
    def system_text(self, body: dict[str, Any]) -> str: ...

    @abstractmethod
    def json_answer(self, text: str, prompt: int, completion: int) -> dict[str, Any]: ...

    @abstractmethod
    def stream(self, words: list[str], prompt: int, completion: int) -> list[Any]: ...


class ChatSpeaker(Speaker):
    wire, reason = CHAT, "stop"

    def request(self, system: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
        messages = [{"role": role, "content": text} for role, text in turns]
        return {"model": "m", "messages": [{"role": "system", "content": system}, *messages]}

    def system_text(self, body: dict[str, Any]) -> str:
        return "\n\n".join(m["content"] for m in body["messages"] if m["role"] == "system")

    def json_answer(self, text: str, prompt: int, completion: int) -> dict[str, Any]:
        message = {"role": "assistant", "content": text}
        usage = {"prompt_tokens": prompt, "completion_tokens": completion}
        return {"choices": [{"message": message, "finish_reason": "stop"}], "usage": usage}

    def stream(self, words: list[str], prompt: int, completion: int) -> list[Any]:
        chunks: list[Any] = [
            {"choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
            for w in words
        ]
        chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append(
            {"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
        )
        return [*chunks, "[DONE]"]


class MessagesSpeaker(Speaker):
    wire, reason = MESSAGES, "end_turn"

    def request(self, system: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
        messages = [
            {"role": role, "content": [{"type": "text", "text": text}]} for role, text in turns
        ]
        return {"model": "m", "max_tokens": 10, "system": system, "messages": messages}

    def system_text(self, body: dict[str, Any]) -> str:
        system: str = body["system"]
        return system

    def json_answer(self, text: str, prompt: int, completion: int) -> dict[str, Any]:
        return {
            "type": "message",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }

    def stream(self, words: list[str], prompt: int, completion: int) -> list[Any]:
        usage = {"input_tokens": prompt, "output_tokens": 1}
        return [
            {"type": "message_start", "message": {"stop_reason": None, "usage": usage}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
            *(
                {"type": "content_block_delta", "delta": {"type": "text_delta", "text": w}}
                for w in words
            ),
            {"type": "content_block_stop", "index": 0},
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": completion},
            },
            {"type": "message_stop"},
        ]


class ResponsesSpeaker(Speaker):
    wire, reason = RESPONSES, "completed"

    def request(self, system: str, turns: list[tuple[str, str]]) -> dict[str, Any]:
        part = {"user": "input_text", "assistant": "output_text"}
        items = [
            {"type": "message", "role": role, "content": [{"type": part[role], "text": text}]}
            for role, text in turns
        ]
        return {"model": "m", "instructions": system, "input": items}

    def system_text(self, body: dict[str, Any]) -> str:
        instructions: str = body["instructions"]
        return instructions

    def json_answer(self, text: str, prompt: int, completion: int) -> dict[str, Any]:
        item = {"type": "message", "content": [{"type": "output_text", "text": text}]}
        return {
            "object": "response",
            "status": "completed",
            "output": [item],
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }

    def stream(self, words: list[str], prompt: int, completion: int) -> list[Any]:
        whole = self.json_answer("".join(words), prompt, completion)
        return [
            {"type": "response.created", "response": {**whole, "status": "in_progress"}},
            *({"type": "response.output_text.delta", "delta": w} for w in words),
            {"type": "response.completed", "response": whole},
        ]


SPEAKERS = [ChatSpeaker(), MessagesSpeaker(), ResponsesSpeaker()]
each_api = pytest.mark.parametrize("speaker", SPEAKERS, ids=lambda s: s.wire.name)

texts = st.text(min_size=1, max_size=30).filter(str.strip)
exchanges = st.lists(st.tuples(texts, texts), max_size=4)


def conversation(pairs: list[tuple[str, str]]) -> list[Message]:
    messages: list[Message] = []
    for question, answer in pairs:
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    return messages


def turns_of(messages: list[Message]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in messages]


def test_every_chat_api_has_its_adapter() -> None:
    assert {type(s.wire) for s in SPEAKERS} == {
        type(f) for f in WIRE_FORMATS.values() if isinstance(f, ChatFormat)
    }


@each_api
@settings(max_examples=60, deadline=None)
@given(pairs=exchanges)
def test_turns_round_trip_through_the_neutral_shape(speaker: Speaker, pairs: Any) -> None:
    stored = conversation(pairs)
    written = speaker.wire.history_turns(stored, [])
    assert speaker.wire.neutral(written) == stored
    body = speaker.request("S", turns_of(stored))
    split = speaker.wire.conversation(body)
    assert split is not None
    assert speaker.wire.neutral(split[1]) == stored


@each_api
@settings(max_examples=60, deadline=None)
@given(pairs=exchanges, question=texts)
def test_the_latest_turn_is_the_humans_question(
    speaker: Speaker, pairs: Any, question: str
) -> None:
    turns = [*turns_of(conversation(pairs)), ("user", question)]
    split = speaker.wire.conversation(speaker.request("S", turns))
    assert split is not None
    sent = split[1]  # after the system prompt
    assert speaker.wire.user_text(sent[-1]) == question
    assert speaker.wire.user_text(sent[0]) == (pairs[0][0] if pairs else question)
    if pairs:
        assert speaker.wire.user_text(sent[1]) == ""  # an answer is no human's text
        assert speaker.wire.final_answer_text(sent[1]) == pairs[0][1]
        assert speaker.wire.is_answer(sent[1]) and not speaker.wire.is_answer(sent[0])


@each_api
@settings(max_examples=40, deadline=None)
@given(pairs=exchanges, question=texts)
def test_a_block_opens_the_latest_user_turn_or_ends_the_system_prompt(
    speaker: Speaker, pairs: Any, question: str
) -> None:
    body = speaker.request("S", [*turns_of(conversation(pairs)), ("user", question)])
    sent = copy.deepcopy(body)
    index = len(pairs) * 2 + (1 if speaker.wire is CHAT else 0)  # chat's system message
    placed = speaker.wire.in_user_turn(body, index, BLOCK)
    assert placed is not None
    turns = speaker.wire.turns(placed)
    assert turns is not None
    assert speaker.wire.user_text(turns[index]) in (f"{BLOCK}{question}", f"{BLOCK}\n\n{question}")
    assert turns[:index] == (speaker.wire.turns(body) or [])[:index]
    in_system = speaker.wire.in_system_prompt(body, BLOCK)
    assert in_system is not None
    assert speaker.system_text(in_system) == f"S\n\n{BLOCK}"
    assert body == sent  # the client's request is copied, never changed


@each_api
@settings(max_examples=40, deadline=None)
@given(pairs=st.lists(st.tuples(texts, texts), min_size=1, max_size=4), question=texts)
def test_stored_history_goes_between_the_system_prompt_and_the_question(
    speaker: Speaker, pairs: Any, question: str
) -> None:
    history = conversation(pairs)
    body = speaker.request("S", [("user", question)])
    prepared = prepare(speaker.wire, body, history, LIMITS)
    assert prepared is not None
    assert prepared.injected == len(history)
    assert speaker.system_text(prepared.body) == "S"
    split = speaker.wire.conversation(prepared.body)
    assert split is not None
    assert speaker.wire.neutral(split[1]) == [*history, {"role": "user", "content": question}]
    assert prepared.new_turns == [{"role": "user", "content": question}]
    question_turn = last_human_turn(speaker.wire, prepared.body)
    assert question_turn is not None and question_turn.latest
    resent = speaker.request("S", [*turns_of(history), ("user", question)])
    again = prepare(speaker.wire, resent, history, LIMITS)
    assert again is not None and again.injected == 0 and again.body is resent
    assert again.new_turns == [{"role": "user", "content": question}]


def read(
    wire: ChatFormat | None, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> Answer:
    reader = AnswerReader(wire.answer_parser() if wire else None)
    reader.start(200, headers)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    at = sorted({min(point, len(data)) for point in points})
    return [data[a:b] for a, b in zip([0, *at], [*at, len(data)], strict=True)]


def sse(events: list[Any]) -> bytes:
    return b"".join(
        b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n"
        for e in events
    )


@each_api
@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(st.text(max_size=12), min_size=1, max_size=8),
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**6),
    points=st.lists(st.integers(0, 3000), max_size=10),
    streamed=st.booleans(),
)
def test_an_answer_cut_anywhere_gives_its_message_usage_cost_and_reason(
    speaker: Speaker,
    words: list[str],
    prompt: int,
    completion: int,
    points: list[int],
    streamed: bool,
) -> None:
    """Whatever the text (quotes, newlines, "usage" itself) and however the bytes arrive;
    a blank answer is no message (it would store an empty assistant turn)."""
    text = "".join(words)
    if streamed:
        data, headers = sse(speaker.stream(words, prompt, completion)), SSE
    else:
        data = json.dumps(speaker.json_answer(text, prompt, completion)).encode()
        headers = JSON
    for wire in (speaker.wire, None):  # memory keeps the message / only accounting reads
        answer = read(wire, headers, cut(data, points))
        assert answer.usage == TokenUsage(prompt, completion)
        assert answer.cost == 0.25
        assert answer.finish_reason == speaker.reason
        if wire is None:
            assert answer.message is None
        else:
            assert answer.complete
            expected = {"role": "assistant", "content": text} if text.strip() else None
            assert answer.message == expected


@each_api
def test_an_answer_cut_short_is_incomplete(speaker: Speaker) -> None:
    events = speaker.stream(["Hel", "lo"], 1, 2)
    last_word = max(i for i, event in enumerate(events) if '"lo"' in json.dumps(event))
    answer = read(speaker.wire, SSE, [sse(events[: last_word + 1])])
    assert not answer.complete
    assert answer.message == {"role": "assistant", "content": "Hello"}
