from __future__ import annotations

import json

import pytest

from memory_proxy.capture import AnswerCapture

SSE = [(b"content-type", b"text/event-stream")]
JSON = [(b"content-type", b"application/json")]


def openai_stream(words: list[str], done: bool = True) -> bytes:
    events = [
        {"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]}
        for word in words
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


def anthropic_stream(words: list[str]) -> bytes:
    events = [("message_start", {"type": "message_start"})]
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
def test_streams_split_at_every_position_give_the_same_answer(api: str, stream: bytes) -> None:
    for cut in range(len(stream) + 1):
        capture = AnswerCapture(api)
        capture.start(200, SSE)
        capture.feed(stream[:cut])
        capture.feed(stream[cut:])
        assert capture.answer() == {"role": "assistant", "content": "Hello wörld"}
        assert capture.complete


def test_a_stream_cut_short_is_incomplete() -> None:
    capture = AnswerCapture("openai")
    capture.start(200, SSE)
    capture.feed(openai_stream(["par", "tial"], done=False))
    assert capture.answer() == {"role": "assistant", "content": "partial"}
    assert not capture.complete


def test_json_answers_in_both_formats() -> None:
    openai = AnswerCapture("openai")
    openai.start(200, JSON)
    openai.feed(b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}')
    assert openai.answer() == {"role": "assistant", "content": "hi"}
    anthropic = AnswerCapture("anthropic")
    anthropic.start(200, JSON)
    blocks = [{"type": "text", "text": "a"}, {"type": "tool_use"}, {"type": "text", "text": "b"}]
    anthropic.feed(json.dumps({"content": blocks}).encode())
    assert anthropic.answer() == {"role": "assistant", "content": "ab"}


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
    capture = AnswerCapture("openai")
    capture.start(200, SSE)
    capture.feed(b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events))
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
        (200, [*JSON, (b"content-encoding", b"gzip")]),
        (200, [(b"content-type", b"text/plain")]),
    ],
)
def test_errors_compressed_and_unknown_answers_are_not_captured(
    status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    capture = AnswerCapture("openai")
    capture.start(status, headers)
    capture.feed(b'{"choices": [{"message": {"content": "x"}}]}')
    assert capture.answer() is None


def responses_stream(words: list[str]) -> bytes:
    events = [{"type": "response.created"}]
    events += [{"type": "response.output_text.delta", "delta": w} for w in words]
    events.append({"type": "response.completed"})
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


def test_responses_stream_split_anywhere_and_json() -> None:
    stream = responses_stream(["Hel", "lo"])
    for cut in range(len(stream) + 1):
        capture = AnswerCapture("responses")
        capture.start(200, SSE)
        capture.feed(stream[:cut])
        capture.feed(stream[cut:])
        assert capture.answer() == {"role": "assistant", "content": "Hello"}
        assert capture.complete
    plain = AnswerCapture("responses")
    plain.start(200, JSON)
    output = [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}]
    plain.feed(json.dumps({"output": output}).encode())
    assert plain.answer() == {"role": "assistant", "content": "Hi"}
