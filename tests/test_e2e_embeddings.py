"""Recall by meaning end to end (recall.embedding_model): the real litellm binary routes
the proxy's /v1/embeddings calls to a deterministic fake provider (fake_embeddings.py), and
chat requests to FakeUpstream. A paraphrase that shares no telling word with its fact is
found only with embeddings on; with the provider hung, recall by words still answers and
the late embedding is counted."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from memory_proxy.app import MemoryProxy
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.fake_embeddings import FakeEmbeddings
from tests.fake_upstream import FakeUpstream
from tests.sdks import openai
from tests.shared_litellm import SDK_USERS, SharedLiteLLM
from tests.support import serve, wait_until

pytestmark = pytest.mark.litellm

FACT = "The nightly build artifacts are uploaded to the bucket named osprey-9."
OFF_TOPIC = "Lunch on Thursdays is at the taqueria near the river."
PARAPHRASE = "Where do compiled outputs get stored each evening?"
BY_WORDS = "Which files go into osprey-9?"


@dataclass
class Provider:
    chat: FakeUpstream
    embeddings: FakeEmbeddings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/embeddings"):
            await self.embeddings(scope, receive, send)
        else:
            await self.chat(scope, receive, send)


@dataclass
class Stack:
    litellm: SharedLiteLLM
    provider: Provider
    directory: Path


@pytest.fixture
def stack(shared_litellm: SharedLiteLLM, tmp_path: Path) -> Iterator[Stack]:
    """`fake-embed` and the chat models on the test's provider (shared_litellm.py)."""
    provider = Provider(FakeUpstream(reply_text="Noted."), FakeEmbeddings())
    try:
        with shared_litellm.providers(provider=provider):
            yield Stack(shared_litellm, provider, tmp_path)
    finally:
        provider.embeddings.release.set()


@contextlib.contextmanager
def proxy(stack: Stack, name: str, **recall: object) -> Iterator[tuple[str, MemoryProxy]]:
    """A proxy in front of LiteLLM, its memory in its own file."""
    config = stack.litellm.config(stack.directory, SDK_USERS)
    settings = stack.litellm.settings(
        config,
        stack.directory / f"{name}.sqlite3",
        overrides={f"recall.{key}": value for key, value in recall.items()},
    )
    app = MemoryProxy(settings)
    with serve(app) as url:
        yield url, app


def ask(url: str, session: str, text: str, user: str = "alice") -> int:
    """The question asked in `session`; how many memories were recalled into it."""
    client = openai.OpenAI(
        base_url=f"{url}/v1",
        api_key="anything",
        default_headers={"x-session-id": session, "x-memory-user-id": user},
    )
    answer = client.chat.completions.with_raw_response.create(
        model="fake-gpt", messages=[{"role": "user", "content": text}]
    )
    return int(answer.headers["x-memory-recalled"])


def counts(database: Path) -> tuple[int, int]:
    """(memories, vectors) in the file."""
    with sqlite3.connect(database) as db:
        (memories,) = db.execute("SELECT COUNT(*) FROM memories").fetchone()
        (vectors,) = db.execute("SELECT COUNT(*) FROM memory_vectors").fetchone()
    return int(memories), int(vectors)


def remember(url: str, database: Path, user: str = "alice") -> None:
    """The fact and an off-topic memory told in a first session, and embedded."""
    ask(url, "monday", FACT, user)
    ask(url, "monday", OFF_TOPIC, user)
    wait_until(lambda: counts(database)[0] >= 2)


def last_sent(stack: Stack) -> str:
    return stack.provider.chat.requests[-1].body.decode()


EMBEDDINGS_ON = {"embedding_model": "fake-embed", "timeout_ms": 5000, "min_similarity": 0.5}


def test_a_paraphrase_finds_its_fact_only_with_embeddings_on(stack: Stack) -> None:
    with proxy(stack, "words") as (url, _):
        remember(url, stack.directory / "words.sqlite3")
        assert ask(url, "tuesday", PARAPHRASE) == 0
    with proxy(stack, "meaning", **EMBEDDINGS_ON) as (url, _):
        database = stack.directory / "meaning.sqlite3"
        remember(url, database)
        wait_until(lambda: counts(database)[1] == counts(database)[0])
        assert ask(url, "tuesday", PARAPHRASE) == 1
        assert "osprey-9" in last_sent(stack) and "taqueria" not in last_sent(stack)
    # The proxy's own key went to LiteLLM (LiteLLM sent the provider's on).
    assert set(stack.provider.embeddings.authorizations) == {"Bearer provider-key"}


def test_a_memory_forgotten_is_not_found_by_meaning_the_moment_the_api_answers(
    stack: Stack,
) -> None:
    """The project's vectors are held in memory after the first search: forgetting takes
    its vector out of the next search at once."""
    with proxy(stack, "forget", **EMBEDDINGS_ON) as (url, _):
        database = stack.directory / "forget.sqlite3"
        remember(url, database)
        wait_until(lambda: counts(database)[1] == counts(database)[0])
        assert ask(url, "tuesday", PARAPHRASE) == 1  # found by meaning: held now
        listed = httpx.get(f"{url}/v1/memories", params={"user_id": "alice"}).json()["data"]
        (fact,) = [m for m in listed if "osprey-9" in m["text"]]
        assert httpx.delete(f"{url}/v1/memories/{fact['id']}").status_code == 200
        ask(url, "wednesday", PARAPHRASE)  # may recall tuesday's exchange: it asked the same
        assert "osprey-9" not in last_sent(stack)


def test_the_vectors_held_in_memory_are_bounded_by_vector_cache_mb(stack: Stack) -> None:
    with proxy(stack, "bounded", embedding_model="fake-embed", vector_cache_mb=3) as (_, app):
        assert isinstance(app.memory_index, SQLiteMemoryIndex)
        assert app.memory_index.vectors.cache.max_bytes == 3 * 1024 * 1024


def test_no_memory_of_another_user_is_found_by_meaning(stack: Stack) -> None:
    with proxy(stack, "users", **EMBEDDINGS_ON) as (url, _):
        database = stack.directory / "users.sqlite3"
        remember(url, database, user="bob")
        wait_until(lambda: counts(database)[1] == counts(database)[0])
        assert ask(url, "tuesday", PARAPHRASE, user="alice") == 0


def test_with_the_provider_hung_recall_by_words_answers_and_the_miss_is_counted(
    stack: Stack,
) -> None:
    late = "memory_proxy_recall_embeddings_late_total"
    with proxy(stack, "hung", embedding_model="fake-embed", timeout_ms=300) as (url, app):
        database = stack.directory / "hung.sqlite3"
        remember(url, database)
        wait_until(lambda: counts(database)[1] == counts(database)[0])
        stack.provider.embeddings.hang.set()
        try:
            assert ask(url, "tuesday", BY_WORDS) == 1
            assert "osprey-9" in last_sent(stack)
            assert app.metrics.registry.get_sample_value(late) == 1
        finally:
            stack.provider.embeddings.hang.clear()
            stack.provider.embeddings.release.set()
