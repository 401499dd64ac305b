"""Whatever the body and headers, the proxy never answers 500 itself: a body that memory
or usage cannot understand or re-encode reaches LiteLLM exactly as the client sent it, and
LiteLLM answers."""

from __future__ import annotations

import json
import operator
import re
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer

from memory_proxy.memory.question import RECALLED_TAG
from memory_proxy.records.messages import ROLES
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

CHAT_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
SESSION = {"x-memory-user-id": "alice", "x-session-id": "odd-1"}
RECALLED = f"<{RECALLED_TAG}-"  # the block's name ends in a random suffix
_RECALLED_AT_START = re.compile(rf"<({RECALLED_TAG}-[0-9a-f]+)>.*?</\1>\n\n", re.DOTALL)


def nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep: orjson reads up to 1024 levels, writes up to 254."""
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


def metric(proxy: str, name: str) -> float:
    for line in httpx.get(f"{proxy}/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exposed")


@pytest.mark.parametrize("session", [{}, SESSION], ids=["no-session", "session"])
@pytest.mark.parametrize("path", CHAT_PATHS)
def test_a_body_too_deep_to_re_encode_reaches_litellm_as_sent(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    path: str,
    session: dict[str, str],
) -> None:
    upstream, url = fake_upstream
    body = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "input": "hi",
        "metadata": {"deep": nested(300)},
    }
    sent = json.dumps(body).encode()
    headers = {"content-type": "application/json", **session}
    with run_proxy(url) as proxy:
        if session:  # history to inject, so memory rewrites the body too
            short = {"model": "m", "messages": [{"role": "user", "content": "a"}], "input": "a"}
            assert httpx.post(f"{proxy}{path}", json=short, headers=session).status_code == 200
            wait_until(lambda: stored(proxy, session) == 2)
        before = metric(proxy, "memory_proxy_malformed_bodies_total")
        response = httpx.post(f"{proxy}{path}", content=sent, headers=headers)
        counted = metric(proxy, "memory_proxy_malformed_bodies_total") - before
    assert response.status_code == 200
    assert upstream.requests[-1].body == sent
    rewritten = bool(session) or path == "/v1/chat/completions"  # memory, or usage's ask
    assert counted == (1 if rewritten else 0)


def stored(proxy: str, session: dict[str, str]) -> int:
    response = httpx.get(f"{proxy}/v1/sessions/{session['x-session-id']}", headers=session)
    return len(response.json()["messages"]) if response.status_code == 200 else 0


ODD_ANSWERS = [
    (
        "/v1/chat/completions",
        "application/json",
        b'{"choices": {"0": {}}, "usage": {"prompt_tokens": 3, "completion_tokens": 4}}',
    ),
    (
        "/v1/chat/completions",
        "text/event-stream",
        b'data: {"choices": [{"delta": {"content": ["x"]}}]}\n\n'
        b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}}\n\n'
        b"data: [DONE]\n\n",
    ),
    (
        "/v1/messages",
        "application/json",
        b'{"content": [{"type": "text", "text": null}],'
        b' "usage": {"input_tokens": 3, "output_tokens": 4}}',
    ),
    (
        "/v1/responses",
        "text/event-stream",
        b'data: {"type": "response.output_text.delta", "delta": 1}\n\n'
        b'data: {"type": "response.completed", "response": {"output": "x",'
        b' "usage": {"input_tokens": 3, "output_tokens": 4}}}\n\n',
    ),
]


@pytest.mark.parametrize(("path", "content_type", "answer"), ODD_ANSWERS)
def test_an_answer_memory_cannot_read_is_relayed_and_recorded(
    httpserver: HTTPServer, run_proxy: ProxyFactory, path: str, content_type: str, answer: bytes
) -> None:
    httpserver.expect_request(path).respond_with_data(answer, content_type=content_type)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "input": "hi"}
    with run_proxy(httpserver.url_for("/").rstrip("/")) as proxy:
        response = httpx.post(f"{proxy}{path}", json=body, headers=SESSION)
        wait_until(lambda: totals(proxy)["requests"] == 1)
        recorded = totals(proxy)
    assert response.status_code == 200
    assert response.content == answer
    assert (recorded["prompt_tokens"], recorded["completion_tokens"]) == (3, 4)


def totals(proxy: str) -> dict[str, Any]:
    total: dict[str, Any] = httpx.get(f"{proxy}/v1/usage").json()["total"]
    return total


# Arbitrary JSON, and chat bodies of the three APIs whose every piece may be odd.
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
texts = st.text(max_size=16)
blocks = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "input_text", "output_text", "image_url", "tool_use", "tool_result"]
        )
        | json_values
    },
    optional={
        "text": texts | json_values,
        "id": texts | json_values,
        "name": texts | json_values,
        "input": st.dictionaries(texts, scalars, max_size=2) | json_values,
        "tool_use_id": texts | json_values,
        "content": texts
        | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts | json_values}))
        | json_values,
    },
)
contents = texts | st.lists(blocks | json_values, max_size=3) | json_values
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "id": texts | json_values,
            "type": st.just("function") | json_values,
            "function": st.fixed_dictionaries(
                {"name": texts | json_values, "arguments": texts | json_values}
            )
            | json_values,
        }
    )
    | json_values,
    max_size=2,
)
messages = st.fixed_dictionaries(
    {"role": st.sampled_from(sorted(ROLES)) | json_values, "content": contents},
    optional={
        "tool_calls": tool_calls | json_values,
        "tool_call_id": texts | json_values,
        "type": st.sampled_from(["message", "function_call", "function_call_output"]) | json_values,
    },
)
well_formed_messages = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant"]), "content": texts}
)
new_questions = st.lists(
    st.fixed_dictionaries({"role": st.just("user"), "content": texts}), min_size=1, max_size=2
)
conversations = (
    new_questions  # what gets history injected
    | st.lists(well_formed_messages, min_size=1, max_size=4)  # what carries its own
    | st.builds(operator.add, st.lists(messages, min_size=1, max_size=2), new_questions)
)
chat_bodies = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": conversations, "input": texts | conversations},
    optional={
        "stream": st.booleans(),
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": json_values})
        | json_values,
        "metadata": st.builds(nested, st.integers(250, 260)) | json_values,
        "previous_response_id": texts | json_values,
    },
)
odd_bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": json_values,
        "messages": st.lists(messages | json_values, max_size=3) | json_values,
        "input": st.lists(messages | json_values, max_size=3) | json_values,
        "stream": json_values,
        "stream_options": json_values,
        "metadata": st.fixed_dictionaries({}, optional={"session_id": json_values}) | json_values,
    },
)
header_values = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=12)
sessions = st.sampled_from(["s-1", "s-2"])
odd_headers = st.fixed_dictionaries(
    {
        "content-type": st.sampled_from(
            ["application/json", "application/json; charset=utf-8", "text/plain"]
        )
    },
    optional={
        "x-session-id": sessions | header_values,
        "x-memory-user-id": st.just("alice") | header_values,
        "x-sm-conversation-id": sessions | header_values,
        "authorization": header_values,
        "anthropic-version": header_values,
        "x-fuzz": header_values,
    },
)
session_headers = st.fixed_dictionaries(
    {"content-type": st.just("application/json")}, optional={"x-session-id": sessions}
)


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


# Each test shares one proxy among its examples: sessions s-1 and s-2 fill up as they run,
# so later examples get history injected. The fake upstream never answers 500 itself.
@pytest.mark.parametrize(
    ("bodies", "headers"),
    [
        (st.builds(encode, chat_bodies), session_headers),
        (st.builds(encode, odd_bodies | json_values) | st.binary(max_size=16), odd_headers),
    ],
    ids=["chat-bodies-with-odd-pieces", "arbitrary-json-and-headers"],
)
def test_no_body_or_header_gets_a_500_of_the_proxys_own(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    bodies: st.SearchStrategy[bytes],
    headers: st.SearchStrategy[dict[str, str]],
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy, httpx.Client(base_url=proxy) as client:

        @settings(max_examples=200, deadline=None, database=None)
        @given(path=st.sampled_from(CHAT_PATHS), body=bodies, sent_headers=headers)
        def check(path: str, body: bytes, sent_headers: dict[str, str]) -> None:
            seen = len(upstream.requests)
            response = client.post(path, content=body, headers=sent_headers)
            assert response.status_code != 500, response.text
            if sent_headers["content-type"] == "text/plain":  # not JSON: refused unread
                assert (response.status_code, len(upstream.requests)) == (415, seen)
                return
            if response.status_code == 400 and len(upstream.requests) == seen:
                return  # refused by the proxy (an unusable id), in the client's format
            (received,) = upstream.requests[seen:]
            assert_same_or_rewritten(path, body, received.body)

        check()


def assert_same_or_rewritten(path: str, original: bytes, received: bytes) -> None:
    """The client's bytes, or its JSON object with only memory's and usage's changes:
    well-formed history spliced into its messages, and usage asked of its stream."""
    if received == original:
        return
    sent, before = orjson.loads(received), orjson.loads(original)
    assert isinstance(sent, dict) and isinstance(before, dict)
    touched = {"messages", "input", "stream_options"}
    assert {k: v for k, v in sent.items() if k not in touched} == {
        k: v for k, v in before.items() if k not in touched
    }
    if sent.get("stream_options") != before.get("stream_options"):
        assert sent["stream_options"] == {
            **(before.get("stream_options") or {}),
            "include_usage": True,
        }
    key = "input" if path == "/v1/responses" else "messages"
    client_turns = before.get(key)
    sent_turns = without_recalled_blocks(sent.get(key))
    if isinstance(client_turns, str):
        client_turns = [{"role": "user", "content": client_turns}]
        if isinstance(sent_turns, str):
            sent_turns = [{"role": "user", "content": sent_turns}]
    if sent_turns != client_turns:
        assert isinstance(client_turns, list)  # only a list of turns gets anything spliced in
        assert_spliced(client_turns, sent_turns)


def without_recalled_blocks(turns: Any) -> Any:
    """The turns as they were before recall opened a user turn with its block: the one
    change recall may make (it has its own tests; here it must only not break bodies)."""
    if isinstance(turns, str):
        return _unrecalled_text(turns)
    if not isinstance(turns, list):
        return turns
    return [
        {**turn, "content": _unrecalled(turn.get("content"))}
        if isinstance(turn, dict) and turn.get("role") == "user" and "content" in turn
        else turn
        for turn in turns
    ]


def _unrecalled(content: Any) -> Any:
    if isinstance(content, str):
        return _unrecalled_text(content)
    if isinstance(content, list):
        return [
            part
            for part in content
            if not (isinstance(part, dict) and str(part.get("text", "")).startswith(RECALLED))
        ]
    return content


def _unrecalled_text(text: str) -> str:
    return _RECALLED_AT_START.sub("", text, count=1)


def assert_spliced(client_turns: list[Any], sent: list[Any]) -> None:
    """`sent` is the client's list with history of known roles inserted at one place."""
    added = len(sent) - len(client_turns)
    assert added > 0
    for split in range(len(client_turns) + 1):
        if sent[:split] == client_turns[:split] and sent[split + added :] == client_turns[split:]:
            injected = sent[split : split + added]
            assert all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and m["role"] in ROLES
                for m in injected
            ), injected
            return
    raise AssertionError(f"client turns not kept in order: {client_turns} -> {sent}")
