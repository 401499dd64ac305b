"""The Supermemory recall backend against a fake Supermemory on loopback: what it sends,
how it reads the answers, and that a container never serves another user or project."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.records.memory import GENERAL_PROJECT, MemoryRecord, memory_id
from memory_proxy.stores.supermemory_index import SupermemoryIndex, container_tag

KEY = "sm-test-key-0123456789"
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def record(text: str, user_id: str = "alice", project: str = "shop-1a2b3c4d") -> MemoryRecord:
    return MemoryRecord(
        id=memory_id(user_id, project, text),
        user_id=user_id,
        project=project,
        session_id="s-1",
        client="claude-cli",
        model=None,
        created_at=1_700_000_000.0,
        text=text,
    )


async def add_then_close(url: str, records: list[MemoryRecord]) -> None:
    index = SupermemoryIndex(KEY, url)
    try:
        await index.add(records)
    finally:
        await index.aclose()


async def search_then_close(url: str, **query: Any) -> list[Any]:
    index = SupermemoryIndex(KEY, url)
    try:
        return await index.search(**query)
    finally:
        await index.aclose()


def test_add_sends_one_document_per_memory_in_its_container(httpserver: HTTPServer) -> None:
    httpserver.expect_request(
        "/v3/documents", method="POST", headers={"authorization": f"Bearer {KEY}"}
    ).respond_with_json({"id": "doc-1", "status": "queued"})
    memory = record("User: staging runs on port 5433\nAssistant: Noted.")

    run(add_then_close(httpserver.url_for("/"), [memory]))

    (request, _), *_ = httpserver.log
    assert json.loads(request.data) == {
        "content": memory.text,
        "containerTags": ["mp_alice__shop-1a2b3c4d"],
        "customId": memory.id,
        "metadata": {  # model was None: Supermemory's metadata holds no nulls
            "user_id": "alice",
            "project": "shop-1a2b3c4d",
            "session_id": "s-1",
            "client": "claude-cli",
            "created_at": 1_700_000_000.0,
        },
    }


def test_a_failing_add_raises_so_the_writer_counts_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v3/documents").respond_with_data("overloaded", status=503)
    with pytest.raises(httpx.HTTPStatusError):
        run(add_then_close(httpserver.url_for("/"), [record("User: x\nAssistant: y")]))


def test_search_asks_one_container_and_reads_memories_and_chunks(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v4/search", method="POST").respond_with_json(
        {
            "results": [
                {
                    "id": "m-1",
                    "memory": "Staging runs on port 5433",
                    "similarity": 0.91,
                    "updatedAt": "2026-11-24T10:00:00Z",
                },
                {
                    "id": "c-1",
                    "chunk": "User: deploy with make release\nAssistant: ok",
                    "similarity": 0.55,
                    "metadata": {"user_id": "alice", "session_id": "s-9", "client": "codex"},
                },
            ],
            "total": 2,
        }
    )

    hits = run(
        search_then_close(
            httpserver.url_for("/"),
            user_id="alice",
            project="shop-1a2b3c4d",
            query="which port does staging use",
            limit=5,
        )
    )

    (request, _), *_ = httpserver.log
    assert json.loads(request.data) == {
        "q": "which port does staging use",
        "containerTag": "mp_alice__shop-1a2b3c4d",
        "searchMode": "hybrid",
        "limit": 5,
    }
    assert [(hit.record.text, hit.score) for hit in hits] == [
        ("Staging runs on port 5433", 0.91),
        ("User: deploy with make release\nAssistant: ok", 0.55),
    ]
    assert hits[0].record.client == "supermemory"  # extracted by Supermemory itself
    assert hits[0].record.created_at == datetime(2026, 11, 24, 10, tzinfo=UTC).timestamp()
    assert hits[1].record.client == "codex"


def test_search_drops_the_current_session_other_users_and_odd_results(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/v4/search").respond_with_json(
        {
            "results": [
                {
                    "memory": "from this session",
                    "similarity": 0.9,
                    "metadata": {"session_id": "s-1"},
                },
                {"memory": "bob's", "similarity": 0.8, "metadata": {"user_id": "bob"}},
                {"memory": "other project", "similarity": 0.8, "metadata": {"project": "x"}},
                {"memory": None, "similarity": 0.7},
                {"chunk": "no score"},
                "not an object",
                {"memory": "kept", "similarity": 0.4},
            ]
        }
    )
    hits = run(
        search_then_close(
            httpserver.url_for("/"),
            user_id="alice",
            project=GENERAL_PROJECT,
            query="anything",
            limit=5,
            exclude_session="s-1",
        )
    )
    assert [hit.record.text for hit in hits] == ["kept"]
    (request, _), *_ = httpserver.log
    assert json.loads(request.data)["containerTag"] == "mp_alice"


def test_an_empty_query_or_every_project_asks_nothing(httpserver: HTTPServer) -> None:
    url = httpserver.url_for("/")
    assert run(search_then_close(url, user_id="a", project="p", query="  ", limit=5)) == []
    assert run(search_then_close(url, user_id="a", project=None, query="port", limit=5)) == []
    assert httpserver.log == []


def test_a_private_models_memories_and_questions_never_reach_supermemory(
    httpserver: HTTPServer,
) -> None:
    """Nothing of a private model's exchanges leaves: not its memories, not the question
    of a request that may go to a private model (mixed ones too)."""
    httpserver.expect_request("/v3/documents").respond_with_json({"id": "d", "status": "ok"})
    url = httpserver.url_for("/")
    told_llama = dataclasses.replace(
        record("User: the vault code is 4471\nAssistant: ok"), private=True
    )
    hosted = record("User: staging runs on port 5433\nAssistant: Noted.")
    run(add_then_close(url, [told_llama, hosted]))
    run(add_then_close(url, [told_llama]))
    for privacy in ("private", "mixed"):
        query = {"user_id": "alice", "project": "p", "query": "vault code 4471", "limit": 5}
        assert run(search_then_close(url, **query, privacy=privacy)) == []
    assert [json.loads(request.data)["content"] for request, _ in httpserver.log] == [hosted.text]


def test_the_key_goes_only_in_the_authorization_header(httpserver: HTTPServer) -> None:
    def answer(request: Request) -> Response:
        assert KEY not in request.get_data(as_text=True)
        return Response('{"results": []}', content_type="application/json")

    httpserver.expect_request("/v4/search").respond_with_handler(answer)
    run(search_then_close(httpserver.url_for("/"), user_id="a", project="p", query="q", limit=1))
    assert httpserver.log[0][0].headers["authorization"] == f"Bearer {KEY}"


_ids = st.from_regex(VALID_ID, fullmatch=True).filter(lambda s: "\n" not in s)


@given(_ids, _ids, _ids, _ids)
def test_container_tags_never_collide(
    user_a: str, project_a: str, user_b: str, project_b: str
) -> None:
    if (user_a, project_a) != (user_b, project_b):
        assert container_tag(user_a, project_a) != container_tag(user_b, project_b)
    assert container_tag(user_a, GENERAL_PROJECT) != container_tag(user_a, project_a)
