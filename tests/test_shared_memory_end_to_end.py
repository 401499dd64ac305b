"""Two proxies on one PostgreSQL (`memory.store: postgres`), end to end: a fact told
through one is recalled through the other, a conversation goes on through either,
forgetting on one is gone on both, and either's usage shows the traffic of both."""

from __future__ import annotations

from typing import Any

import httpx

from memory_proxy.config import MemorySettings
from tests.conftest import ProxyFactory
from tests.support import FakeUpstream, wait_until

ALICE = {"x-memory-user-id": "alice", "x-memory-project": "shop"}


def chat(proxy: str, session: str, text: str) -> None:
    body = {"model": "fake", "messages": [{"role": "user", "content": text}]}
    headers = {**ALICE, "x-session-id": session}
    answer = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200, answer.text


def memories(proxy: str) -> list[dict[str, Any]]:
    listed = httpx.get(f"{proxy}/v1/memories", params={"user_id": "alice", "project": "shop"})
    assert listed.status_code == 200, listed.text
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def requests_counted(proxy: str) -> int:
    total: int = httpx.get(f"{proxy}/v1/usage").json()["total"]["requests"]
    return total


def test_two_proxies_share_one_memory(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, postgres_url: str
) -> None:
    upstream, url = fake_upstream
    shared = MemorySettings(store="postgres", postgres_url=postgres_url)
    with run_proxy(url, memory=shared) as a, run_proxy(url, memory=shared) as b:
        chat(a, "first", "remember: the staging database listens on port 5433")
        wait_until(lambda: any("5433" in m["text"] for m in memories(b)))

        chat(b, "second", "which port does the staging database listen on?")
        assert b"5433" in upstream.requests[-1].body  # recalled through the other proxy

        chat(b, "first", "and the production one?")  # the conversation begun on A
        assert b"remember: the staging database" in upstream.requests[-1].body

        told = [m for m in memories(a) if "5433" in m["text"]]
        assert httpx.delete(f"{a}/v1/memories/{told[0]['id']}").status_code == 200
        assert not any("5433" in m["text"] for m in memories(b))
        chat(b, "third", "which port does the staging database listen on?")
        assert b"5433" not in upstream.requests[-1].body

        wait_until(lambda: requests_counted(a) == requests_counted(b) == 4)
