"""Local conversation memory through the proxy, in front of a fake upstream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.memory.conversation_support import (
    ALICE,
    chat,
    redis_settings,
    sent_messages,
    stored_count,
)
from tests.support import RedisServer, serve, wait_until


@pytest.mark.parametrize("stream", [False, True])
def test_the_second_request_carries_the_first_exchange(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, stream: bool
) -> None:
    upstream, url = fake_upstream
    upstream.reply_text = "Nice to meet you Alice"
    with run_proxy(url) as proxy:
        chat(proxy, "My name is Alice", ALICE, stream)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        chat(proxy, "What's my name?", ALICE, stream)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 4)
        session = httpx.get(f"{proxy}/v1/sessions/conv-1", headers=ALICE).json()
    assert sent_messages(upstream, 1) == [
        "My name is Alice",
        "Nice to meet you Alice",
        "What's my name?",
    ]
    assert [m["content"] for m in session["messages"]] == [
        "My name is Alice",
        "Nice to meet you Alice",
        "What's my name?",
        "Nice to meet you Alice",
    ]


def test_a_client_that_resends_the_history_gets_no_duplicates(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        chat(proxy, "first", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        full = {
            "model": "m",
            "messages": [
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": upstream.reply_text},
                {"role": "user", "content": "second"},
            ],
        }
        httpx.post(f"{proxy}/v1/chat/completions", json=full, headers=ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 4)
    assert sent_messages(upstream, 1) == ["first", upstream.reply_text, "second"]


def test_two_users_with_the_same_session_id_stay_apart(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    bob = {"x-memory-user-id": "bob", "x-session-id": "conv-1"}
    with run_proxy(url) as proxy:
        chat(proxy, "alice's secret", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        chat(proxy, "hello", bob)
        assert httpx.get(f"{proxy}/v1/sessions/conv-1", headers=bob).status_code == 200
    assert sent_messages(upstream, 1) == ["hello"]


def test_no_session_id_means_no_memory(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        chat(proxy, "one", {"x-memory-user-id": "alice"})
        chat(proxy, "two", {"x-memory-user-id": "alice"})
        listed = httpx.get(f"{proxy}/v1/sessions", params={"user_id": "alice"}).json()
    assert sent_messages(upstream, 1) == ["two"]
    assert listed["data"] == []


def test_the_session_list_is_everyones_unless_a_user_is_named(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """The rule of the memories list: `?user_id=` or the custom header narrows it."""
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        chat(proxy, "hi", ALICE)
        chat(proxy, "hi", {"x-memory-user-id": "bob", "x-session-id": "conv-2"})
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        wait_until(lambda: stored_count(proxy, "bob", "conv-2") == 2)
        every = httpx.get(f"{proxy}/v1/sessions").json()["data"]
        by_header = httpx.get(f"{proxy}/v1/sessions", headers=ALICE).json()["data"]
        by_query = httpx.get(f"{proxy}/v1/sessions", params={"user_id": "bob"}).json()["data"]
    assert sorted(s["user_id"] for s in every) == ["alice", "bob"]
    assert [s["user_id"] for s in by_header] == ["alice"]
    assert [s["user_id"] for s in by_query] == ["bob"]


def test_sqlite_history_survives_a_proxy_restart(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    upstream, url = fake_upstream
    settings = Settings(
        litellm_url=url,
        memory=MemorySettings(store="sqlite", sqlite_path=tmp_path / "m.sqlite3"),
    )
    with serve(MemoryProxy(settings)) as proxy:
        chat(proxy, "remember me", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
    with serve(MemoryProxy(settings)) as proxy:
        chat(proxy, "do you?", ALICE)
    assert sent_messages(upstream, 1) == ["remember me", upstream.reply_text, "do you?"]


def test_session_api_lists_reads_deletes_and_404s_in_the_clients_shape(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        chat(proxy, "hi", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        listed = httpx.get(f"{proxy}/v1/sessions", params={"user_id": "alice"}).json()
        deleted = httpx.delete(f"{proxy}/v1/sessions/conv-1", headers=ALICE)
        missing = httpx.get(f"{proxy}/v1/sessions/conv-1", headers=ALICE)
        bad_page = httpx.get(f"{proxy}/v1/sessions", params={"limit": "many"})
        far_page = httpx.get(f"{proxy}/v1/sessions", params={"offset": "9" * 20})
    (entry,) = listed["data"]
    assert entry["id"] == "conv-1" and entry["user_id"] == "alice"
    assert entry["message_count"] == 2
    assert entry["expires"] > entry["updated"]
    assert listed["has_more"] is False
    assert deleted.json()["deleted"] is True
    assert missing.status_code == 404
    assert "no session" in missing.json()["error"]["message"]
    assert bad_page.status_code == 400
    assert far_page.status_code == 400  # not a 503 from SQLite's integer overflow


def test_an_invalid_user_header_on_the_session_api_is_a_400_not_a_store_failure(
    run_proxy: ProxyFactory,
) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        answer = httpx.get(f"{proxy}/v1/sessions/conv-1", headers={"x-memory-user-id": "a b"})
    assert answer.status_code == 400
    assert "x-memory-user-id must be" in answer.json()["error"]["message"]


def test_two_proxy_instances_share_one_session_through_redis(
    fake_upstream: tuple[FakeUpstream, str], redis_server: RedisServer
) -> None:
    upstream, url = fake_upstream
    settings = redis_settings(url, redis_server.url)
    with serve(MemoryProxy(settings)) as first, serve(MemoryProxy(settings)) as second:
        chat(first, "I am Alice", ALICE)
        wait_until(lambda: stored_count(second, "alice", "conv-1") == 2)
        chat(second, "Who am I?", ALICE)
    assert sent_messages(upstream, 1) == ["I am Alice", upstream.reply_text, "Who am I?"]


@pytest.mark.parametrize("stream", [False, True])
def test_responses_api_remembers_too(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, stream: bool
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        for text, stored_after in (("My name is Alice", 2), ("What's my name?", 4)):
            response = httpx.post(
                f"{proxy}/v1/responses",
                json={"model": "m", "input": text, "stream": stream},
                headers=ALICE,
            )
            assert response.status_code == 200

            def stored(count: int = stored_after) -> bool:
                return stored_count(proxy, "alice", "conv-1") == count

            wait_until(stored)
    second = json.loads(upstream.requests[1].body)["input"]
    assert [item["content"] for item in second] == [
        "My name is Alice",
        upstream.reply_text,
        "What's my name?",
    ]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages", "/v1/responses"])
def test_ill_formed_messages_never_poison_the_session(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, path: str
) -> None:
    upstream, url = fake_upstream
    key = "input" if path == "/v1/responses" else "messages"
    odd = [{"role": 1, "content": "one"}, {"role": None, "content": "null"}]
    with run_proxy(url) as proxy:
        first = {"model": "m", key: [*odd, {"role": "user", "content": "hi"}]}
        assert httpx.post(f"{proxy}{path}", json=first, headers=ALICE).status_code == 200
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") > 0)  # one append
        session = httpx.get(f"{proxy}/v1/sessions/conv-1", headers=ALICE).json()
        second = {"model": "m", key: [{"role": "user", "content": "again"}]}
        assert httpx.post(f"{proxy}{path}", json=second, headers=ALICE).status_code == 200
    assert json.loads(upstream.requests[0].body)[key] == first[key]  # passed on as sent
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]
    injected = json.loads(upstream.requests[1].body)[key]
    assert [m["content"] for m in injected] == ["hi", upstream.reply_text, "again"]


def test_a_full_history_client_whose_past_differs_gets_no_history_added(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        chat(proxy, "first", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        own: dict[str, Any] = {
            "model": "m",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first"},
                {"role": "assistant", "content": "an answer the client edited"},
                {"role": "user", "content": "second"},
            ],
        }
        httpx.post(f"{proxy}/v1/chat/completions", json=own, headers=ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") > 2)  # its one append
        stored = httpx.get(f"{proxy}/v1/sessions/conv-1", headers=ALICE).json()["messages"]
    assert sent_messages(upstream, 1) == [m["content"] for m in own["messages"]]
    assert [m["content"] for m in stored] == [
        "first",
        upstream.reply_text,
        "second",
        upstream.reply_text,
    ]


def sse_of(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)


WHOLE_ANSWERS = {
    "/v1/chat/completions": {
        "choices": [{"message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}]
    },
    "/v1/messages": {"content": [{"type": "text", "text": "fine"}], "stop_reason": "end_turn"},
    "/v1/responses": {
        "status": "completed",
        "output": [{"type": "message", "content": [{"type": "output_text", "text": "fine"}]}],
    },
}
NO_MESSAGE = [
    ("/v1/chat/completions", "application/json", b'{"id": "chatcmpl-1", "object": "x"}'),
    ("/v1/chat/completions", "application/json", json.dumps({"choices": [{"message": {}}]})),
    ("/v1/messages", "application/json", b'{"type": "message", "content": []}'),
    ("/v1/responses", "application/json", b'{"status": "completed", "output": []}'),
    (
        "/v1/messages",
        "text/event-stream",
        sse_of(
            {"type": "content_block_delta", "delta": {"type": "text_delta", "text": ""}},
            {"type": "message_stop"},
        ),
    ),
    (
        "/v1/responses",
        "text/event-stream",
        sse_of(
            {"type": "response.output_text.delta", "delta": ""},
            {"type": "response.completed", "response": {"status": "completed"}},
        ),
    ),
]


@pytest.mark.parametrize(
    ("path", "content_type", "answer"),
    NO_MESSAGE,
    ids=["no-choices", "empty-message", "no-content", "no-output", "empty-deltas", "empty-delta"],
)
def test_a_200_answer_without_a_message_stores_nothing(
    httpserver: HTTPServer,
    run_proxy: ProxyFactory,
    path: str,
    content_type: str,
    answer: str | bytes,
) -> None:
    """Not an empty assistant turn (Anthropic refuses empty text blocks, so it would break
    the session's later requests), nor the question without its answer."""
    httpserver.expect_oneshot_request(path).respond_with_data(answer, content_type=content_type)
    httpserver.expect_request(path).respond_with_json(WHOLE_ANSWERS[path])
    key = "input" if path == "/v1/responses" else "messages"
    with run_proxy(httpserver.url_for("/").rstrip("/")) as proxy:
        for text in ("unanswered", "answered"):
            body = {"model": "m", key: [{"role": "user", "content": text}]}
            assert httpx.post(f"{proxy}{path}", json=body, headers=ALICE).status_code == 200
        # Exchanges are stored in order: once the second is, the first would have been.
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") >= 2)
        stored = httpx.get(f"{proxy}/v1/sessions/conv-1", headers=ALICE).json()["messages"]
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "answered"),
        ("assistant", "fine"),
    ]
