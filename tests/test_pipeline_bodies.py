"""Whatever the body and headers, the proxy never answers 500 itself: a body that memory
or usage cannot understand or re-encode reaches LiteLLM exactly as the client sent it, and
LiteLLM answers."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

import httpx
import pytest

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
