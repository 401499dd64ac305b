"""The offline `demo` model's answer, its chat-completions JSON and stream, and its endpoint
served by a real proxy: local only, never forwarded, never counted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from memory_proxy.api.echo_model import (
    EARLIER_TURN_CHARS,
    ECHO_PATH,
    MAX_EARLIER_TURNS,
    MAX_ECHOED_CHARS,
    answer_text,
    completion,
    stream_events,
    usage,
)
from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.sdks import openai
from tests.support import lifespan
from tests.test_messages import JSON_VALUES


def sse_chunks(events: list[bytes]) -> tuple[list[dict[str, Any]], bytes]:
    """The JSON chunks of a stream, and its last event."""
    assert all(event.startswith(b"data: ") and event.endswith(b"\n\n") for event in events)
    return [json.loads(event[6:]) for event in events[:-1]], events[-1]


def test_answer_counts_messages_by_role_and_echoes_the_last_user_turn() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Alice"},
        {"role": "assistant", "content": "Hello Alice"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "Who "}, {"type": "text", "text": "am I?"}],
        },
    ]
    assert answer_text(messages) == (
        "Echo model: I received 4 messages (1 system, 2 user, 1 assistant).\n"
        "Earlier turns:\n"
        "user: My name is Alice\n"
        "assistant: Hello Alice\n"
        "Your last message:\nWho am I?"
    )


def test_what_memory_put_back_comes_back_in_the_answer() -> None:
    """Told "My name is Ada", then asked "What is my name?" in one session: the proxy puts
    the first exchange back, and the demo's answer shows it, so Ada comes back."""
    told = [{"role": "user", "content": "My name is Ada"}]
    first = answer_text(told)
    asked = [
        *told,
        {"role": "assistant", "content": first},
        {"role": "user", "content": "What is my name?"},
    ]
    assert answer_text(asked) == (
        "Echo model: I received 3 messages (2 user, 1 assistant).\n"
        "Earlier turns:\n"
        "user: My name is Ada\n"
        "assistant: Echo model: I received 1 message (1 user). Your last message: My name is Ada\n"
        "Your last message:\nWhat is my name?"
    )


def test_earlier_turns_are_the_latest_ten_each_cut_to_one_short_line() -> None:
    long = "word " * 40  # 200 characters
    turns = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}\n  {long}"}
        for i in range(12)
    ]
    tool_loop = [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
        {"role": "tool", "content": "42", "tool_call_id": "c1"},
        {"role": "assistant", "content": "It is 42."},
    ]
    messages = [
        {"role": "system", "content": "You are terse."},
        *turns,
        *tool_loop,
        {"role": "user", "content": "and now?"},
    ]
    lines = answer_text(messages).split("\n")
    start = lines.index("Earlier turns (the last 10 of 15):")
    shown = lines[start + 1 : start + 1 + MAX_EARLIER_TURNS]
    assert shown[0] == "assistant: " + f"turn 5 {long}"[:EARLIER_TURN_CHARS] + "…"
    assert shown[1] == "user: " + f"turn 6 {long}"[:EARLIER_TURN_CHARS] + "…"
    assert shown[6] == "assistant: " + f"turn 11 {long}"[:EARLIER_TURN_CHARS] + "…"
    assert shown[7:] == ["assistant: (no text)", "tool: 42", "assistant: It is 42."]
    assert lines[start + 1 + MAX_EARLIER_TURNS :] == ["Your last message:", "and now?"]
    assert "You are terse." not in lines  # the system prompt is not a turn


def test_one_message_is_singular_and_no_user_turn_is_said() -> None:
    assert answer_text([{"role": "user", "content": "hi"}]).startswith(
        "Echo model: I received 1 message (1 user).\n"
    )
    assert answer_text([]) == (
        "Echo model: I received 0 messages (none).\n"
        "There was no user message since the last answer."
    )


def test_a_turn_split_over_several_user_messages_is_echoed_whole() -> None:
    """As Claude Code's reminders and prompt arrive after LiteLLM's conversion."""
    messages = [
        {"role": "user", "content": "earlier"},
        {"role": "assistant", "content": "answer"},
        {"role": "user", "content": "<system-reminder>context</system-reminder>"},
        {"role": "user", "content": "Hello"},
        {"role": "user", "content": "Operator note: agent list"},
    ]
    assert answer_text(messages).endswith(
        "Your last 3 messages:\n<system-reminder>context</system-reminder>\nHello\n"
        "Operator note: agent list"
    )
    tool_result = [*messages[:2], {"role": "tool", "content": "42", "tool_call_id": "c1"}]
    assert answer_text(tool_result).endswith("\nThere was no user message since the last answer.")


def test_memory_blocks_of_the_system_prompt_are_echoed_and_nothing_else_of_it() -> None:
    system = (
        "You are terse.\n<recalled-memories source='local'>\n- Alice likes tea\n"
        "</recalled-memories>\nMore rules. <Memory>prefers Python</Memory>"
    )
    text = answer_text([{"role": "system", "content": system}, {"role": "user", "content": "q"}])
    assert text == (
        "Echo model: I received 2 messages (1 system, 1 user).\n"
        "Memory in the system prompt:\n"
        "<recalled-memories source='local'>\n- Alice likes tea\n</recalled-memories>\n"
        "<Memory>prefers Python</Memory>\n"
        "Your last message:\nq"
    )
    unmatched = [{"role": "user", "content": "<memory>in a user turn</memory>"}]
    assert "Memory in the system prompt" not in answer_text(unmatched)


def test_a_long_last_turn_keeps_its_start_and_end_and_says_what_was_left_out() -> None:
    long = "memories " + "x" * MAX_ECHOED_CHARS + " the question"
    text = answer_text([{"role": "user", "content": long}])
    half = MAX_ECHOED_CHARS // 2
    assert text.endswith(
        f"\n{long[:half]}\n… ({len(long) - MAX_ECHOED_CHARS} characters left out) …\n{long[-half:]}"
    )
    assert text.count("memories ") == 1 and text.endswith(" the question")


@given(
    st.lists(
        JSON_VALUES
        | st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "system", "assistant"]) | JSON_VALUES},
            optional={
                "content": JSON_VALUES
                | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": JSON_VALUES}))
            },
        ),
        max_size=8,
    )
)
@example([{"role": "assistant"}, {"role": "user"}, {"role": "user"}])  # "Your last 2 messages:"
def test_any_json_messages_get_an_answer_that_counts_them(messages: list[Any]) -> None:
    text = answer_text(messages)
    assert text.startswith(f"Echo model: I received {len(messages)} message")
    lines = text.split("\n")
    headings = [i for i, line in enumerate(lines) if line.startswith("Earlier turns")]
    if headings:
        first = headings[0] + 1
        last = next(i for i in range(first, len(lines)) if _ends_earlier_turns(lines[i]))
        assert 1 <= last - first <= MAX_EARLIER_TURNS
        for line in lines[first:last]:
            assert len(line.partition(": ")[2]) <= EARLIER_TURN_CHARS + 1
    token_usage = usage(messages, text)
    assert (
        token_usage["total_tokens"]
        == token_usage["prompt_tokens"] + token_usage["completion_tokens"]
    )


def _ends_earlier_turns(line: str) -> bool:
    """The line after the earlier turns: the last message(s), or that there was none."""
    return line in ("Your last message:", "There was no user message since the last answer.") or (
        line.startswith("Your last ") and line.endswith(" messages:")
    )


def test_json_answer_is_a_chat_completion() -> None:
    token_usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    answer = completion("echo", "line one\nline two", token_usage, created=1700000000)
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "echo"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "line one\nline two"},
            "finish_reason": "stop",
        }
    ]
    assert answer["usage"] == token_usage


@pytest.mark.parametrize("with_usage", [False, True])
def test_stream_carries_the_text_a_line_a_chunk_then_stop_usage_and_done(with_usage: bool) -> None:
    token_usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    text = "line one\nline two\nline three"
    events = list(stream_events("echo", text, token_usage if with_usage else None, 1))
    chunks, last = sse_chunks(events)
    assert last == b"data: [DONE]\n\n"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(c for c in contents if c) == text
    assert len([c for c in contents if c]) == 3
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes == [None] * 4 + ["stop"]
    usage_chunks = [c for c in chunks if not c["choices"]]
    assert usage_chunks == (
        [{**chunks[0], "choices": [], "usage": token_usage}] if with_usage else []
    )
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}


def test_openai_sdk_talks_to_the_endpoint_directly(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """Served by the proxy itself: nothing reaches LiteLLM, nothing is counted or stored."""
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as url:
        client = openai.OpenAI(base_url=f"{url}/demo/v1", api_key="placeholder")
        messages: Any = [{"role": "user", "content": "hi there"}]
        answer = client.chat.completions.create(model="echo", messages=messages)
        expected = "Echo model: I received 1 message (1 user).\nYour last message:\nhi there"
        assert answer.choices[0].message.content == expected
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        chunks = list(
            client.chat.completions.create(
                model="echo",
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-session-id": "never-stored"},
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected
        assert chunks[-1].usage is not None and not chunks[-1].choices
        sessions = httpx.get(f"{url}/v1/sessions/never-stored")
        usage_totals = httpx.get(f"{url}/v1/usage").json()
    assert upstream.requests == []
    assert sessions.status_code == 404
    assert usage_totals["total"]["requests"] == 0


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"{not json", "expected a JSON body with a list of messages"),
        (b'{"model": "echo", "messages": "hi"}', "expected a JSON body with a list of messages"),
        (b"[1, 2]", "expected a JSON body with a list of messages"),
    ],
)
def test_bad_bodies_get_an_openai_error(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, body: bytes, problem: str
) -> None:
    upstream, upstream_url = fake_upstream
    with run_proxy(upstream_url) as url:
        response = httpx.post(
            f"{url}{ECHO_PATH}", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == problem
    assert upstream.requests == []


def test_callers_beyond_this_machine_are_refused() -> None:
    """httpx's ASGI transport sets the caller's address; no traffic leaves the process."""
    app = MemoryProxy(Settings())
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
    ask = {"messages": [{"role": "user", "content": "hi"}]}

    async def call() -> httpx.Response:
        async with (
            lifespan(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c,
        ):
            return await c.post(ECHO_PATH, json=ask)

    response = asyncio.run(call())
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "permission_error"
