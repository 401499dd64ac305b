"""Long-term memory through the proxy, in front of a fake upstream: indexing, recall,
the memory modes and what answers say about them."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from starlette.types import Receive, Scope, Send

from memory_proxy.app import MemoryProxy
from memory_proxy.config import ClientKey, Settings
from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory import question
from memory_proxy.memory.request_memory import MemoryScope
from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.in_memory import InMemoryStore
from memory_proxy.wire.answer import Answer, AnswerReader
from memory_proxy.wire.registry import CHAT
from tests.fake_upstream import FakeUpstream
from tests.memory.recall_support import (
    BrokenIndex,
    BusyIndex,
    SlowIndex,
    WordIndex,
    request_memory,
)
from tests.support import serve, wait_until

ALICE = {"x-memory-user-id": "alice", "x-memory-project": "repo-1"}
FACT = "Our staging database is called heron-17"


@contextmanager
def proxy_with(
    upstream_url: str, index: WordIndex, **overrides: Any
) -> Iterator[tuple[str, MemoryProxy]]:
    settings = dataclasses.replace(Settings(), litellm_url=upstream_url, **overrides)
    app = MemoryProxy(settings, recall_backend=index)
    with serve(app) as url:
        yield url, app


def chat(
    proxy: str, text: str, headers: dict[str, str], path: str = "/v1/chat/completions"
) -> httpx.Response:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": text}]}
    if path == "/v1/messages":
        body["max_tokens"] = 50
    return httpx.post(f"{proxy}{path}", json=body, headers=headers)


def sent_text(upstream: FakeUpstream, index: int = -1) -> str:
    return json.dumps(json.loads(upstream.requests[index].body)["messages"])


def counter(app: MemoryProxy, name: str) -> float:
    return app.metrics.registry.get_sample_value(name) or 0.0


def searches_failed(app: MemoryProxy) -> float:
    """Recall's failures, as the memory store's errors count them."""
    name = "memory_proxy_memory_store_errors_total"
    return app.metrics.registry.get_sample_value(name, {"operation": "search"}) or 0.0


def test_an_exchange_is_recalled_in_another_session_and_never_stored_back(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    index = WordIndex()
    with proxy_with(url, index) as (proxy, _):
        chat(proxy, FACT, {**ALICE, "x-session-id": "monday"})
        wait_until(lambda: len(index.records) == 1)
        answer = chat(
            proxy, "What is the staging database called?", {**ALICE, "x-session-id": "tue"}
        )
        wait_until(lambda: len(index.records) == 2)
        stored = httpx.get(f"{proxy}/v1/sessions/tue", headers=ALICE).json()["messages"]
    assert answer.status_code == 200
    assert answer.headers["x-memory-recalled"] == "1"
    assert answer.headers["x-memory-project"] == "repo-1"
    assert answer.headers["x-memory-session"] == "tue"
    assert "<recalled-memories-" in sent_text(upstream) and "heron-17" in sent_text(upstream)
    first = next(r for r in index.records.values() if r.session_id == "monday")
    assert first.text == f"User: {FACT}\nAssistant: {upstream.reply_text}"
    assert (first.user_id, first.project, first.client) == ("alice", "repo-1", "custom-header")
    assert not any("recalled" in r.text for r in index.records.values())
    assert not any("recalled" in m["content"] for m in stored)


def test_the_current_session_and_other_users_and_projects_are_left_out(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    index = WordIndex()
    with proxy_with(url, index) as (proxy, _):
        chat(proxy, FACT, {**ALICE, "x-session-id": "monday"})
        wait_until(lambda: len(index.records) == 1)
        question = "What is the staging database called?"
        same_session = chat(proxy, question, {**ALICE, "x-session-id": "monday"})
        bob = chat(proxy, question, {**ALICE, "x-memory-user-id": "bob"})
        other_project = chat(proxy, question, {**ALICE, "x-memory-project": "repo-2"})
    for answer in (same_session, bob, other_project):
        assert answer.headers["x-memory-recalled"] == "0"
    assert not any("<recalled-memories-" in sent_text(upstream, i) for i in (1, 2, 3))


@pytest.mark.parametrize(
    ("mode", "recalls", "indexes"),
    [("off", False, False), ("read", True, False), ("write", False, True), ("on", True, True)],
)
def test_the_memory_header_chooses_what_memory_does(
    fake_upstream: tuple[FakeUpstream, str], mode: str, recalls: bool, indexes: bool
) -> None:
    upstream, url = fake_upstream
    index = WordIndex()
    with proxy_with(url, index) as (proxy, _):
        chat(proxy, FACT, ALICE)
        wait_until(lambda: len(index.records) == 1)
        headers = {**ALICE, "x-memory": mode, "x-session-id": "s2"}
        answer = chat(proxy, "Which staging database?", headers)
        if indexes:
            wait_until(lambda: len(index.records) == 2)
        # With the session's own exchange stored, a later request shows what was kept.
        sessions = httpx.get(f"{proxy}/v1/sessions/s2", headers=ALICE)
    assert answer.status_code == 200
    assert ("heron-17" in sent_text(upstream)) is recalls
    assert (len(index.records) == 2) is indexes
    assert (sessions.status_code == 200) is indexes
    assert not {"x-memory", "x-memory-project", "x-memory-user-id"} & set(
        upstream.requests[-1].headers
    )


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_an_unknown_memory_mode_is_refused_in_the_clients_format(
    fake_upstream: tuple[FakeUpstream, str], path: str
) -> None:
    upstream, url = fake_upstream
    with proxy_with(url, WordIndex()) as (proxy, _):
        answer = chat(proxy, "hi", {**ALICE, "x-memory": "sometimes"}, path)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "x-memory must be one of" in error["message"]
    assert (answer.json().get("type") == "error") is (path == "/v1/messages")
    assert upstream.requests == []


def test_a_configured_mode_applies_to_that_user(fake_upstream: tuple[FakeUpstream, str]) -> None:
    _upstream, url = fake_upstream
    index = WordIndex()
    memory = dataclasses.replace(Settings().memory, modes={"alice": "off"})
    with proxy_with(url, index, memory=memory) as (proxy, _):
        answer = chat(proxy, FACT, {**ALICE, "x-memory": "on"})
    assert "x-memory-recalled" not in answer.headers
    assert index.records == {} and index.searches == []


def test_a_caller_whose_key_passes_through_has_its_own_memory_never_anothers(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    index = WordIndex()
    keys = (ClientKey("ck-" + "k" * 30, "alice"),)
    with proxy_with(url, index, client_keys=keys) as (proxy, _):
        chat(proxy, FACT, {**ALICE, "authorization": f"Bearer {keys[0].key}"})
        wait_until(lambda: len(index.records) == 1)
        question = "What is the staging database called?"
        foreign = {**ALICE, "authorization": "Bearer sk-litellm-virtual"}
        answer = chat(proxy, question, foreign)
        wait_until(lambda: len(index.records) == 2)
    assert answer.headers["x-memory-recalled"] == "0"
    assert "heron" not in sent_text(upstream)
    users = sorted(record.user_id for record in index.records.values())
    assert users[0] == "alice" and users[1].startswith("key-")


def test_a_failing_index_fails_no_request_and_is_counted(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    with proxy_with(url, BrokenIndex()) as (proxy, app):
        answer = chat(proxy, FACT, ALICE)
        wait_until(lambda: searches_failed(app) == 1)
        wait_until(lambda: counter(app, "memory_proxy_memories_dropped_total") == 1)
    assert answer.status_code == 200 and upstream.reply_text in answer.text


def test_a_slow_recall_is_cut_at_its_budget_and_counted(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    _upstream, url = fake_upstream
    recall = dataclasses.replace(RecallSettings(), timeout_ms=20)
    with proxy_with(url, SlowIndex(), recall=recall) as (proxy, app):
        answer = chat(proxy, FACT, ALICE)
        assert counter(app, "memory_proxy_recall_timeouts_total") == 1
    assert answer.status_code == 200
    assert answer.headers["x-memory-recalled"] == "0"


def test_a_busy_index_skips_recall_at_once_and_is_counted(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    with proxy_with(url, BusyIndex()) as (proxy, app):
        answer = chat(proxy, FACT, ALICE)
        skipped = app.metrics.registry.get_sample_value(
            "memory_proxy_recall_skipped_total", {"reason": "busy"}
        )
        assert (skipped, counter(app, "memory_proxy_recall_timeouts_total")) == (1, 0)
        assert searches_failed(app) == 0
    assert answer.status_code == 200 and upstream.reply_text in answer.text
    assert answer.headers["x-memory-recalled"] == "0"


def test_the_debug_endpoint_shows_the_project_and_mode(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    _upstream, url = fake_upstream
    with proxy_with(url, WordIndex()) as (proxy, _):
        routing = httpx.get(f"{proxy}/v1/debug/routing", headers={**ALICE, "x-memory": "read"})
    assert routing.json()["project"] == "repo-1"
    assert routing.json()["memory_mode"] == "read"


async def answered_but_still_open(scope: Scope, receive: Receive, send: Send) -> None:
    """A Responses stream whose last event has arrived while the stream is still open."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    sse = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": sse})
    output = [{"type": "message", "role": "assistant", "content": [{"type": "output_text"}]}]
    events: tuple[dict[str, Any], ...] = (
        {"type": "response.output_text.delta", "delta": "Noted."},
        {"type": "response.completed", "response": {"id": "r1", "output": output}},
    )
    for event in events:
        chunk = b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    while (await receive())["type"] != "http.disconnect":
        pass


def test_a_client_leaving_after_the_final_event_still_leaves_a_complete_exchange() -> None:
    """Codex 0.169 closes its connection once `response.completed` arrives, before the
    stream ends: its answer is whole, so it is indexed and stored complete."""
    index = WordIndex()
    headers = {**ALICE, "x-session-id": "codex-run"}
    body = {"model": "m", "input": FACT, "stream": True}
    with serve(answered_but_still_open) as url, proxy_with(url, index) as (proxy, _):
        with httpx.stream("POST", f"{proxy}/v1/responses", json=body, headers=headers) as answer:
            for line in answer.iter_lines():
                if "response.completed" in line:
                    break
        wait_until(lambda: len(index.records) == 1)
        stored = httpx.get(f"{proxy}/v1/sessions/codex-run", headers=ALICE).json()["messages"]
    (record,) = index.records.values()
    assert record.text == f"User: {FACT}\nAssistant: Noted."
    assert stored[-1]["content"] == "Noted."
    assert not stored[-1].get("partial")


def finished(answer: dict[str, Any]) -> Answer:
    reader = AnswerReader(CHAT.answer_parser())
    reader.start(200, [(b"content-type", b"application/json")])
    reader.feed(orjson.dumps({"choices": [{"message": answer}]}))
    return reader.finish()


def cut_short(text: str) -> Answer:
    """A stream that ended before its final event: the client never had the whole answer."""
    reader = AnswerReader(CHAT.answer_parser())
    reader.start(200, [(b"content-type", b"text/event-stream")])
    delta = {"choices": [{"index": 0, "delta": {"content": text}}]}
    reader.feed(b"data: " + orjson.dumps(delta) + b"\n\n")
    return reader.finish()


@pytest.mark.parametrize(
    "answer",
    [
        finished({"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {}}]}),
        finished({"role": "assistant", "content": "Let me look", "tool_calls": [{"id": "c"}]}),
        finished({"role": "assistant", "content": ""}),
        cut_short("Done"),
    ],
    ids=["only-tool-calls", "text-and-tool-calls", "empty", "cut-short"],
)
def test_only_final_answers_become_memories(answer: Answer) -> None:
    index = WordIndex()

    async def scenario() -> None:
        memory = request_memory(InMemoryStore(60), index)
        memory.start()
        scope = MemoryScope(
            "alice", None, "", "c", "m", reads=True, writes=True, session_memory=False
        )
        payload = {"messages": [{"role": "user", "content": "Run it"}]}
        turn = await memory.begin(CHAT, payload, payload, scope)
        assert turn is not None
        memory.finish(turn, answer)
        await memory.aclose()

    asyncio.run(scenario())
    assert index.records == {}


@pytest.mark.parametrize("created_at", [1e20, -1e20, float("inf")])
def test_a_memory_with_an_impossible_time_is_still_recalled(
    fake_upstream: tuple[FakeUpstream, str], created_at: float
) -> None:
    """A bad time in the index (an import from before it was checked, a hand-edited file)
    costs that memory its date, never a request its memory."""
    upstream, url = fake_upstream
    text = f"User: {FACT}\nAssistant: noted"
    bad = MemoryRecord("bad-time", "alice", "repo-1", "monday", "claude-cli", "m", created_at, text)
    index = WordIndex({bad.id: bad})
    with proxy_with(url, index) as (proxy, _):
        answer = chat(proxy, "What is the staging database called?", ALICE)
    assert answer.status_code == 200
    assert answer.headers["x-memory-recalled"] == "1"
    content = json.loads(upstream.requests[-1].body)["messages"][-1]["content"]
    assert (
        '<memory date="unknown" client="claude-cli">\nUser: Our staging database is called heron-17'
        in content
    )


def test_without_recall_the_question_is_not_looked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """Session memory alone reads no question (recall and the index are off): the hot
    path of the session case does not pay for finding it."""

    def never(*args: object) -> None:
        raise AssertionError("the question was looked for")

    monkeypatch.setattr("memory_proxy.memory.request_memory.last_human_turn", never)

    async def scenario() -> None:
        memory = request_memory(InMemoryStore(60), None)
        scope = MemoryScope(
            "alice", "s1", "", "c", "m", reads=True, writes=True, session_memory=True
        )
        payload = {"model": "m", "messages": [{"role": "user", "content": "Hello"}]}
        turn = await memory.begin(CHAT, payload, payload, scope)
        assert turn is not None and turn.session_turn is not None and turn.question is None
        await memory.aclose()

    asyncio.run(scenario())


def test_a_question_without_topic_words_does_not_wait_for_recall(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ "hi" with no session: nothing to search, nothing to put back, so recall's `apply`
    is not even awaited (its coroutine and outcome cost the hot path ~5k instructions);
    the turn is what `apply` would have left."""

    async def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("recall was applied")

    async def scenario() -> None:
        memory = request_memory(InMemoryStore(60), WordIndex())
        assert memory.recall is not None
        monkeypatch.setattr(memory.recall, "apply", never)
        scope = MemoryScope("alice", None, "", "c", "m", True, True, False)
        payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        turn = await memory.begin(CHAT, payload, payload, scope)
        assert turn is not None and turn.body is payload
        assert (turn.recalled, turn.recalled_tokens, turn.injected) == (0, None, 0)
        assert turn.question is not None and turn.question.text == "hi"
        await memory.aclose()

    asyncio.run(scenario())


def test_a_question_with_topic_words_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deciding whether recall has work (`Recall.idle`) does not make the query that
    `apply` makes again: a question recall searches pays for its words once."""
    made: list[str] = []
    real_query = question.search_query

    def counted(turn: question.HumanTurn | None) -> str | None:
        made.append(turn.text if turn is not None else "")
        return real_query(turn)

    monkeypatch.setattr(question, "search_query", counted)

    async def scenario() -> None:
        memory = request_memory(InMemoryStore(60), WordIndex())
        scope = MemoryScope("alice", None, "", "c", "m", True, True, False)
        text = "which port does the staging database use?"
        payload = {"model": "m", "messages": [{"role": "user", "content": text}]}
        assert await memory.begin(CHAT, payload, payload, scope) is not None
        assert made == [text]
        await memory.aclose()

    asyncio.run(scenario())
