"""The memory cases of scripts/bench: what each proxy is configured with, what its store
holds before the first request (10,000 sessions; for the whole path also a long-term index
of 10,000 memories of the requesting user and project), what its requests carry, and the
in-process cost of session memory per store."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from memory_proxy.config import MemorySettings
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.records.memory import MemoryRecord
from memory_proxy.records.messages import Message
from memory_proxy.stores.base import MemoryStore
from memory_proxy.stores.open import open_memory_index, open_store
from memory_proxy.wire.answer import AnswerReader
from memory_proxy.wire.registry import CHAT
from scripts.bench_load import CHAT_PATH, Figures, chat_body
from scripts.bench_recall import add_in_batches, latency_corpus
from scripts.recall_dataset import Fact, filler

SEED_DRIVER = Path(__file__).with_name("bench_seed_driver.py")
SESSIONS = 10_000
MEMORIES = 10_000
EVERYDAY_QUESTIONS = 2_000
INDEX_USER, INDEX_PROJECT = "user0", "project0"  # latency_corpus's one scope
EXCHANGE: list[Message] = [
    {"role": "user", "content": "a question of a typical length " * 4},
    {"role": "assistant", "content": "an answer of a typical length " * 8},
]
SEEDED = EXCHANGE * 3  # each seeded session's messages


@dataclass(frozen=True)
class MemoryCase:
    """A proxy configuration and the requests sent to it."""

    name: str
    config: dict[str, Any]  # sections over the shipped config.yaml
    headers: dict[str, str] = field(default_factory=dict)
    sessions: int = 0  # requests name one of `s0`..: seeded with history
    memories: int = 0  # in its long-term index; requests ask what it holds
    workers: int = 1

    async def seed(self, sqlite_path: Path) -> list[str] | None:
        """Fill the store before the first request; the questions to ask (None: "hi")."""
        user = self.headers.get("x-memory-user-id", "")
        if self.sessions:
            await seed_sessions(open_store(self.store_settings(sqlite_path)), user, self.sessions)
        return await seed_index(sqlite_path, self.memories) if self.memories else None

    def store_settings(self, sqlite_path: Path) -> MemorySettings:
        """The session store its proxy opens: the SQLite file at `sqlite_path`, or the
        PostgreSQL database its config names (`store: postgres`)."""
        memory = self.config.get("memory", {})
        return MemorySettings(
            store=memory.get("store", "sqlite"),
            sqlite_path=sqlite_path,
            postgres_url=memory.get("postgres_url"),
        )

    def seed_of(self, sqlite_path: Path, checkout: Path) -> None:
        """What `seed` stores, stored by another checkout's code in its format (for
        --compare): the sessions, and the same memories in its long-term index when its
        code has one (a commit from before recall has none). In the PostgreSQL database
        its config names, if it names one."""
        user = self.headers.get("x-memory-user-id", "")
        target = self.store_settings(sqlite_path).postgres_url or str(sqlite_path)
        env = {**os.environ, "PYTHONPATH": str(checkout)}
        driver = [sys.executable, str(SEED_DRIVER)]
        if self.sessions:
            argv = [*driver, target, user, str(self.sessions), json.dumps(SEEDED)]
            subprocess.run(argv, env=env, check=True, cwd=checkout)
        if self.memories:
            rows = [dataclasses.asdict(record) for record in index_corpus(self.memories)[2]]
            records = sqlite_path.with_suffix(".memories.json")
            records.write_bytes(orjson.dumps(rows))
            argv = [*driver, "--memories", target, str(records)]
            subprocess.run(argv, env=env, check=True, cwd=checkout)


def memory_cases() -> list[MemoryCase]:
    """No memory (the product minus memory: usage records on), the shipped defaults for a
    request that names no session (memory and recall on: its exchange indexed), session
    memory, and the whole path (history, recall, capture, session store and index)."""
    sqlite = {"enabled": True, "store": "sqlite"}
    return [
        MemoryCase("no memory", {"memory": {"enabled": False}}),
        MemoryCase("no session header", {}),
        MemoryCase(
            "session memory",
            {"memory": sqlite, "recall": {"enabled": False}},
            headers={"x-memory-user-id": "bench"},
            sessions=SESSIONS,
        ),
        MemoryCase(
            "whole memory path",
            {"memory": sqlite, "recall": {"enabled": True, "backend": "local"}},
            headers={"x-memory-user-id": INDEX_USER, "x-memory-project": INDEX_PROJECT},
            sessions=SESSIONS,
            memories=MEMORIES,
        ),
    ]


def _sqlite(path: Path) -> MemorySettings:
    return MemorySettings(store="sqlite", sqlite_path=path)


async def seed_sessions(store: MemoryStore, user: str, sessions: int) -> None:
    """`sessions` sessions `s0`.. of three exchanges each."""
    try:
        for index in range(sessions):
            await store.append(user, f"s{index}", SEEDED, partial=False)
    finally:
        await store.aclose()


async def seed_index(sqlite_path: Path, memories: int) -> list[str]:
    """`memories` memories of one user in one project (scripts/bench_recall.py's latency
    corpus: planted facts among everyday exchanges). Returns the questions to ask: the
    facts' own words first, then everyday questions like the corpus's, so that the
    memories the requests add spread over the index as the seeded ones do."""
    rng, facts, records = index_corpus(memories)
    index = open_memory_index(_sqlite(sqlite_path))
    assert index is not None
    try:
        await add_in_batches(index, records)
    finally:
        await index.aclose()
    everyday = [_question_of(filler(rng)) for _ in range(EVERYDAY_QUESTIONS)]
    return [fact.own_words for fact in facts] + list(dict.fromkeys(everyday))


def index_corpus(memories: int) -> tuple[random.Random, list[Fact], list[MemoryRecord]]:
    """The facts and memories `seed_index` stores, seeded by their number (so the same for
    every checkout --compare seeds), and the generator, to draw the questions from next."""
    rng = random.Random(memories)
    facts, records = latency_corpus(memories, rng, users=1, projects=1)
    return rng, facts, records


def _question_of(exchange: str) -> str:
    return exchange.split("\n", 1)[0].removeprefix("User: ")


async def indexed_memories(sqlite_path: Path) -> int:
    """How many memories the whole path's index holds."""
    index = open_memory_index(_sqlite(sqlite_path))
    assert index is not None
    try:
        return sum(project.memory_count for project in await index.projects(INDEX_USER))
    finally:
        await index.aclose()


def probe_recall(url: str, headers: dict[str, str], questions: list[str]) -> float:
    """Memories recalled per request, from the answers' `x-memory-recalled`: proof that
    the case measures recall, not requests that find nothing."""
    recalled = 0
    for question in questions:
        request = urllib.request.Request(
            url + CHAT_PATH,
            data=chat_body(question).encode(),
            headers={**headers, "content-type": "application/json", "x-session-id": "probe"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            recalled += int(answer.headers.get("x-memory-recalled") or 0)
    return recalled / len(questions)


async def memory_cost(
    settings: MemorySettings, sessions: int = SESSIONS, samples: int = 2_000
) -> Figures:
    """Load + inject + capture (+ background store) per request, in process, with
    `sessions` stored."""
    await seed_sessions(open_store(settings), "user", sessions)
    memory = ConversationMemory(open_store(settings), settings)
    answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}).encode()
    body = {"model": "m", "messages": [{"role": "user", "content": "next question"}]}
    timings = []
    for _ in range(samples):
        session = f"s{random.randrange(sessions)}"
        started = time.perf_counter()
        turn = await memory.begin(CHAT, "user", session, body)
        assert turn is not None and turn.injected >= 6
        orjson.dumps(turn.body)  # as the proxy re-encodes the request
        reader = AnswerReader(CHAT.answer_parser())
        reader.start(200, [(b"content-type", b"application/json")])
        reader.feed(answer)
        memory.finish(turn, reader.finish())
        timings.append(time.perf_counter() - started)
    await memory.aclose()
    return {
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": statistics.quantiles(timings, n=100, method="inclusive")[98] * 1000,
    }
