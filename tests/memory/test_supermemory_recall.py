"""Recall through Supermemory's API (`recall.backend: supermemory | both`), through the
real proxy, against a fake Supermemory on loopback: what leaves the machine, and that its
memories reach the request like local ones."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
from pytest_httpserver import HTTPServer

from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from memory_proxy.config.recall import RecallSettings
from tests.fake_upstream import FakeUpstream
from tests.support import serve, wait_until

SM_KEY = "sm-test-key-0123456789"
ALICE = {"x-memory-user-id": "alice", "x-memory-project": "repo-1"}


def settings_for(upstream_url: str, supermemory_url: str, backend: str) -> Settings:
    return dataclasses.replace(
        Settings(),
        litellm_url=upstream_url,
        supermemory_api_key=SM_KEY,
        supermemory_url=supermemory_url,
        recall=dataclasses.replace(RecallSettings(), backend=backend, timeout_ms=2000),
    )


def chat(proxy: str, text: str, session: str = "tue") -> httpx.Response:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
    headers = {**ALICE, "x-session-id": session}
    return httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)


def test_supermemory_recalls_for_any_model_and_is_sent_each_final_exchange(
    fake_upstream: tuple[FakeUpstream, str], httpserver: HTTPServer
) -> None:
    upstream, url = fake_upstream
    httpserver.expect_request("/v4/search", method="POST").respond_with_json(
        {
            "results": [
                {"id": "m-1", "memory": "The staging database is heron-17", "similarity": 0.9}
            ]
        }
    )
    httpserver.expect_request("/v3/documents", method="POST").respond_with_json({"id": "d-1"})
    app = MemoryProxy(settings_for(url, httpserver.url_for("/").rstrip("/"), "supermemory"))
    with serve(app) as proxy:
        answer = chat(proxy, "What is the staging database called?")
        wait_until(lambda: any(r.path == "/v3/documents" for r, _ in httpserver.log))

    assert answer.status_code == 200
    assert answer.headers["x-memory-recalled"] == "1"
    sent = json.loads(upstream.requests[-1].body)["messages"][-1]["content"]
    assert sent.startswith("<recalled-memories-") and "heron-17" in sent
    search = next(json.loads(r.data) for r, _ in httpserver.log if r.path == "/v4/search")
    assert search == {
        "q": "What is the staging database called?",
        "containerTag": "mp_alice__repo-1",
        "searchMode": "hybrid",
        "limit": 10,
    }
    added = next(json.loads(r.data) for r, _ in httpserver.log if r.path == "/v3/documents")
    assert added["containerTags"] == ["mp_alice__repo-1"]
    assert added["content"].startswith("User: What is the staging database called?")
    assert "<recalled-memories-" not in added["content"]  # recalled text never goes back
    assert all(r.headers["authorization"] == f"Bearer {SM_KEY}" for r, _ in httpserver.log)
    assert all(SM_KEY not in r.headers.get("authorization", "") for r in upstream.requests)


def test_both_backends_recall_local_memories_when_supermemory_is_down(
    fake_upstream: tuple[FakeUpstream, str], httpserver: HTTPServer
) -> None:
    upstream, url = fake_upstream
    httpserver.expect_request("/v4/search").respond_with_data("unavailable", status=503)
    httpserver.expect_request("/v3/documents").respond_with_data("unavailable", status=503)
    app = MemoryProxy(settings_for(url, httpserver.url_for("/").rstrip("/"), "both"))
    with serve(app) as proxy:
        chat(proxy, "Our staging database is called heron-17")
        wait_until(lambda: _local_count(proxy) == 1)
        answer = chat(proxy, "What is the staging database called?", session="wed")

    assert answer.headers["x-memory-recalled"] == "1"
    assert "heron-17" in json.loads(upstream.requests[-1].body)["messages"][-1]["content"]


def _local_count(proxy: str) -> int:
    listing = httpx.get(f"{proxy}/v1/memories", headers={"x-memory-user-id": "alice"})
    return len(listing.json()["data"]) if listing.status_code == 200 else 0
