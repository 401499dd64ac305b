"""Whatever the body and headers, the proxy never answers 500 itself: a body that memory
or usage cannot understand or re-encode reaches LiteLLM exactly as the client sent it, and
LiteLLM answers."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from tests.conftest import ProxyFactory
from tests.support import FakeUpstream, wait_until

CHAT_PATHS = ("/v1/chat/completions", "/v1/messages", "/v1/responses")
SESSION = {"x-memory-user-id": "alice", "x-session-id": "odd-1"}


def nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep: orjson reads up to 1024 levels, writes up to 254."""
    return reduce(lambda inner, _: [inner], range(depth), "deep")


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
