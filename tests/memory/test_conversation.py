"""Local conversation memory through the proxy, in front of a fake upstream."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.records.messages import Message
from memory_proxy.stores.base import STORE_OPERATIONS
from memory_proxy.stores.in_memory import InMemoryStore
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import RedisServer, serve, wait_until

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


class BrokenStore(InMemoryStore):
    """A store that is down: every read and write fails."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        raise ConnectionError("store is down")

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        raise ConnectionError("store is down")


def test_a_failing_store_never_fails_the_llm_call(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    assert app.memory is not None
    app.memory.conversations.store = BrokenStore()
    with serve(app) as proxy:
        assert "Hello" in chat(proxy, "hi", ALICE)
        wait_until(lambda: store_errors(app) == 1)
    assert sent_messages(upstream, 0) == ["hi"]


class RefusingStore(InMemoryStore):
    """A store that reads but refuses every write."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        raise ConnectionError("read-only")


def test_a_failed_load_and_a_refused_write_are_counted_apart(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    """memory_proxy_memory_store_errors_total{operation}: a history that could not be
    read and an exchange that could not be kept are told apart; their sum is the total,
    and every operation's series is there from the start."""
    _, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    assert app.memory is not None
    assert store_errors_by_operation(app) == dict.fromkeys(STORE_OPERATIONS, 0.0)
    with serve(app) as proxy:
        app.memory.conversations.store = BrokenStore()
        chat(proxy, "hi", ALICE)
        wait_until(lambda: store_errors(app) == 1)
        app.memory.conversations.store = RefusingStore()
        chat(proxy, "hi again", ALICE)
        wait_until(lambda: store_errors(app) == 2)
    assert store_errors_by_operation(app) == dict.fromkeys(STORE_OPERATIONS, 0.0) | {
        "load": 1.0,
        "append": 1.0,
    }


class HangingStore(InMemoryStore):
    """A store that takes a write and never finishes it."""

    def __init__(self) -> None:
        super().__init__(ttl_seconds=60)
        self.writes = 0

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        self.writes += 1
        await asyncio.Event().wait()  # never set
        return 0


def test_exchanges_not_stored_when_the_proxy_stops_are_counted_and_logged_once(
    fake_upstream: tuple[FakeUpstream, str], caplog: pytest.LogCaptureFixture
) -> None:
    """The store is given a grace to finish what it was writing (5 s; here less), and
    what it had not finished then is counted as appends that failed, not lost silently."""
    _, url = fake_upstream
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url))
    assert app.memory is not None
    store = HangingStore()
    app.memory.conversations.store = store
    app.memory.conversations.shutdown_grace = 0.05
    with serve(app) as proxy:
        chat(proxy, "hi", ALICE)
        chat(proxy, "hi again", {**ALICE, "x-session-id": "conv-2"})
        wait_until(lambda: store.writes == 2)
    assert store_errors_by_operation(app)["append"] == 2
    assert caplog.text.count("not stored") == 1
    assert "2 exchange(s) not stored" in caplog.text


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


def redis_settings(url: str, redis_url: str) -> Settings:
    return Settings(litellm_url=url, memory=MemorySettings(store="redis", redis_url=redis_url))


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


def test_redis_down_degrades_memory_and_its_return_restores_it(
    fake_upstream: tuple[FakeUpstream, str], redis_server: RedisServer
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(redis_settings(url, redis_server.url))
    with serve(app) as proxy:
        chat(proxy, "before", ALICE)
        wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
        redis_server.kill()
        chat(proxy, "while down", ALICE)  # answered, without memory
        assert store_errors(app) >= 1
        listing = httpx.get(f"{proxy}/v1/sessions", headers=ALICE)
        assert listing.status_code == 503
        assert listing.json()["error"]["message"] == "the memory store is unavailable"
        usage = httpx.get(f"{proxy}/v1/usage", headers=ALICE)
        assert (usage.status_code, usage.json()["error"]["message"]) == (
            503,
            "the usage store is unavailable",
        )
        revived = RedisServer(port=redis_server.port)  # empty: the old data died with it
        try:
            chat(proxy, "after", ALICE)
            wait_until(lambda: stored_count(proxy, "alice", "conv-1") == 2)
            chat(proxy, "again", ALICE)
        finally:
            revived.kill()
    assert sent_messages(upstream, 1) == ["while down"]
    assert sent_messages(upstream, 3) == ["after", upstream.reply_text, "again"]


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
