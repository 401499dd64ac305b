"""Conversation memory's tests' helpers: a chat through a proxy, what was stored and
sent, and what the memory store's failures counted."""

from __future__ import annotations

import json

import httpx

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from tests.fake_upstream import FakeUpstream

ALICE = {"x-memory-user-id": "alice", "x-session-id": "conv-1"}


def chat(proxy: str, text: str, headers: dict[str, str], stream: bool = False) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], "stream": stream}
    response = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200
    return response.text


def stored_count(proxy: str, user: str, session: str) -> int:
    response = httpx.get(f"{proxy}/v1/sessions/{session}", params={"user_id": user})
    return len(response.json()["messages"]) if response.status_code == 200 else 0


def sent_messages(upstream: FakeUpstream, index: int) -> list[str]:
    body = json.loads(upstream.requests[index].body)
    return [m["content"] for m in body["messages"]]


def redis_settings(url: str, redis_url: str) -> Settings:
    return Settings(litellm_url=url, memory=MemorySettings(store="redis", redis_url=redis_url))


def store_errors_by_operation(app: MemoryProxy) -> dict[str, float]:
    name = "memory_proxy_memory_store_errors_total"
    return {
        sample.labels["operation"]: sample.value
        for metric in app.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == name
    }


def store_errors(app: MemoryProxy) -> float:
    """The failures counted in /metrics, whatever failed."""
    return sum(store_errors_by_operation(app).values())
