"""Long-history recall, measured through a running proxy at its default settings.

The generated histories (scripts/recall_history.py) are indexed as the proxy indexes an
exchange (the indexer's text: the recalled block stripped, secrets redacted, trimmed;
MemoryIndexer.memory_text) into the SQLite file of a memory proxy started with the
shipped config.yaml, each memory dated as its session was. The index is written directly,
not through requests, because a memory's date is the time the proxy saw it; the
questions go through the real path. Every question is then asked in a new session of its
user and project (`x-memory: read`, so nothing asked is stored), and a fake LiteLLM
behind the proxy keeps what reached it: the question counts when the exchanges holding
its evidence are inside that request (for multi-hop, every group; "at least one" is
reported too). Off-topic questions count when any block reached it. Injected tokens are
the block's characters / 4, as `recall.max_tokens` counts them.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import html
import re
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from memory_proxy.config import load_settings
from memory_proxy.memory.indexing import exchange_text
from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.base import RecallBackend
from memory_proxy.stores.open import open_memory_index
from scripts.bench_processes import free_port, memory_proxy_process, proxy_config, proxy_counters
from scripts.bench_upstream import ANSWER
from scripts.recall_history import Dataset, Exchange, Question
from scripts.recall_plan import QUESTION_KINDS

CHARS_PER_TOKEN = 4  # as recall.max_tokens counts
MODEL = "gpt-4o"  # a model of the shipped config: the proxy refuses names LiteLLM lacks
QUESTION_HEADER = "x-bench-question"
EMBEDDING_MODEL = "bench-embed"  # recall.embedding_model, with `run(..., embeddings=...)`
_BLOCK = re.compile(r"<(recalled-memories-[0-9a-f]+)>\n.*?</\1>", re.DOTALL)
_MEMORY = re.compile(r'<memory date="[^"]*" client="[^"]*">\n(.*?)\n</memory>\n', re.DOTALL)


@dataclass(frozen=True)
class Asked:
    """What reached LiteLLM for one question: the exchanges recalled, the block's size."""

    question: Question
    recalled: tuple[str, ...]
    block_chars: int


class CapturingUpstream:
    """A fake LiteLLM answering every chat request with "ok", keeping each body by the
    question id the bench sent in QUESTION_HEADER."""

    def __init__(self, embeddings: ASGIApp | None = None) -> None:
        self.bodies: dict[str, dict[str, Any]] = {}
        self._embeddings = embeddings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if self._embeddings is not None and scope["path"].endswith("/embeddings"):
            await self._embeddings(scope, receive, send)
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        headers = dict(scope["headers"])
        question = headers.get(QUESTION_HEADER.encode(), b"").decode()
        if question:
            self.bodies[question] = orjson.loads(b"".join(chunks))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": ANSWER})


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """`app` under uvicorn in a thread, on a free loopback port; stopped at the end."""
    port = free_port()
    config = uvicorn.Config(app, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the fake LiteLLM did not start")
            threading.Event().wait(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def records_of(
    exchanges: Sequence[Exchange], text_of: Callable[[str, str], str]
) -> list[MemoryRecord]:
    """The memories the proxy would have stored for `exchanges`, dated as they happened."""
    records = []
    for exchange in exchanges:
        text = text_of(exchange.question, exchange.answer)
        record_id = memory_id(exchange.user, exchange.project, text)
        records.append(
            MemoryRecord(
                record_id,
                exchange.user,
                exchange.project,
                exchange.session,
                exchange.client,
                "bench",
                exchange.at,
                text,
            )
        )
    return records


async def seed(index: RecallBackend, records: list[MemoryRecord]) -> None:
    """In the order they happened, one session at a time (as the proxy adds them)."""
    session: list[MemoryRecord] = []
    for record in records:
        if session and record.session_id != session[-1].session_id:
            await index.add(session)
            session = []
        session.append(record)
    if session:
        await index.add(session)


def memory_text(config: Path) -> Callable[[str, str], str]:
    """The indexer's text of an exchange, redacting as the proxy started with `config`
    does (MemoryIndexer.memory_text)."""
    redact = Redactor.configured(load_settings(config)).text
    return functools.partial(exchange_text, redact=redact)


def ask(client: httpx.Client, proxy: str, question: Question) -> None:
    headers = {
        "x-memory-user-id": question.user,
        "x-session-id": f"bench-{question.id}",
        "x-memory": "read",
        QUESTION_HEADER: question.id,
    }
    if question.project:
        headers["x-memory-project"] = question.project
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a helpful coding assistant."},
            {"role": "user", "content": question.text},
        ],
    }
    answer = client.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)
    answer.raise_for_status()


def what_reached(body: dict[str, Any]) -> tuple[list[str], int]:
    """The texts of the memories in a request's recalled block, and the block's length."""
    contents = [m.get("content") for m in body.get("messages", []) if isinstance(m, dict)]
    for content in contents:
        block = _BLOCK.search(content) if isinstance(content, str) else None
        if block is not None:
            found = [html.unescape(memory) for memory in _MEMORY.findall(block.group())]
            return found, len(block.group())
    return [], 0


def run(
    directory: Path,
    dataset: Dataset,
    name: str = "history",
    recall: dict[str, object] | None = None,
    embeddings: ASGIApp | None = None,
    memory: dict[str, object] | None = None,
    seeded: Callable[[], None] = lambda: None,
) -> tuple[list[Asked], dict[str, float], list[str]]:
    """Seed a proxy's index with `dataset`, ask every question through it; returns what
    reached LiteLLM, the proxy's counters (recall timeouts, skips), and the memory texts.
    The proxy runs the shipped config.yaml, with `recall` over its `recall` section and
    `memory` over its `memory` section (SQLite by default; `seeded` runs once the index
    is: PostgreSQL's statistics gathered, say). With `embeddings` (an app answering
    /v1/embeddings), the fake LiteLLM embeds with it as EMBEDDING_MODEL, and every memory
    has its vector before the first question."""
    sections = {
        "memory": {"enabled": True, "store": "sqlite", **(memory or {})},
        "recall": recall or {},
    }
    if embeddings is not None:
        sections["recall"] = {"embedding_model": EMBEDDING_MODEL, **sections["recall"]}
    config = proxy_config(directory, name, sections)
    if embeddings is not None:
        _add_embedding_model(config)
    records = records_of(dataset.exchanges, memory_text(config))
    ids = {
        (record.user_id, record.project, record.text.strip()): exchange.id
        for record, exchange in zip(records, dataset.exchanges, strict=True)
    }

    async def seed_index() -> None:
        index = open_memory_index(load_settings(config).memory)
        assert index is not None
        try:
            await seed(index, records)
        finally:
            await index.aclose()

    asyncio.run(seed_index())
    seeded()
    upstream = CapturingUpstream(embeddings)
    asked = []
    with serving(upstream) as upstream_url, memory_proxy_process(config, upstream_url) as (url, _):
        if embeddings is not None:
            _wait_for_vectors(Path(load_settings(config).memory.sqlite_path))
        with httpx.Client(timeout=30) as client:
            for question in (*dataset.questions, *dataset.off_topic):
                ask(client, url, question)
                texts, chars = what_reached(upstream.bodies.pop(question.id))
                scope = (question.user, question.project)
                recalled = tuple(ids.get((*scope, text), "unknown") for text in texts)
                asked.append(Asked(question, recalled, chars))
        counters = proxy_counters(url)
    return asked, counters, [record.text for record in records]


def _add_embedding_model(config: Path) -> None:
    """EMBEDDING_MODEL in the config's model_list (the proxy checks the name is there)."""
    settings = yaml.safe_load(config.read_text())
    entry = {"model_name": EMBEDDING_MODEL, "litellm_params": {"model": "openai/bench"}}
    settings["model_list"].append(entry)
    config.write_text(yaml.safe_dump(settings))


def _wait_for_vectors(database: Path, timeout: float = 600) -> None:
    """Until the proxy's embedding writer has given every memory its vector."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as db:
            (missing,) = db.execute(
                "SELECT COUNT(*) FROM memories m WHERE NOT EXISTS "
                "(SELECT 1 FROM memory_vectors v WHERE v.seq = m.seq)"
            ).fetchone()
        if not missing:
            return
        time.sleep(0.5)
    raise RuntimeError(f"{missing} memories still without a vector")


def reached(asked: Asked, every_group: bool = True) -> bool:
    groups = [any(id_ in asked.recalled for id_ in group) for group in asked.question.evidence]
    return all(groups) if every_group else any(groups)


def figures(asked: Sequence[Asked]) -> dict[str, float]:
    """Shares of questions whose evidence reached the request, per kind and split; the
    share of off-topic questions given a block; injected tokens."""
    on_topic = [a for a in asked if a.question.kind != "off-topic"]
    off_topic = [a for a in asked if a.question.kind == "off-topic"]
    result: dict[str, float] = {}
    for kind in QUESTION_KINDS:
        of_kind = [a for a in on_topic if a.question.kind == kind]
        result[kind] = _share(of_kind, reached)
    multi = [a for a in on_topic if a.question.kind == "multi-hop"]
    result["multi-hop, at least one"] = _share(multi, lambda a: reached(a, every_group=False))
    result["all"] = _share(on_topic, reached)
    for split in ("tune", "test"):
        result[split] = _share([a for a in on_topic if a.question.split == split], reached)
    result["off-topic with a block"] = _share(off_topic, lambda a: a.block_chars > 0)
    for split in ("tune", "test"):
        of_split = [a for a in off_topic if a.question.split == split]
        result[f"off-topic with a block, {split}"] = _share(of_split, lambda a: a.block_chars > 0)
    result["tokens on-topic"] = _mean_tokens(on_topic)
    result["tokens off-topic"] = _mean_tokens(off_topic)
    with_block = [a for a in on_topic if a.block_chars]
    result["tokens per block"] = _mean_tokens(with_block)
    result["memories per block"] = (
        statistics.mean(len(a.recalled) for a in with_block) if with_block else 0.0
    )
    result["questions"] = len(on_topic)
    result["off-topic questions"] = len(off_topic)
    result["unknown memories"] = sum(a.recalled.count("unknown") for a in asked)
    return result


def _share(asked: Sequence[Asked], test: Callable[[Asked], bool]) -> float:
    return sum(1 for a in asked if test(a)) / len(asked) if asked else 0.0


def _mean_tokens(asked: Sequence[Asked]) -> float:
    return statistics.mean(a.block_chars / CHARS_PER_TOKEN for a in asked) if asked else 0.0


def counts(dataset: Dataset) -> dict[str, float]:
    per_user = collections.Counter(exchange.user for exchange in dataset.exchanges)
    sessions = {(exchange.user, exchange.session) for exchange in dataset.exchanges}
    kinds = collections.Counter(question.kind for question in dataset.questions)
    return {
        "users": len(per_user),
        "exchanges": len(dataset.exchanges),
        "fewest exchanges of a user": min(per_user.values()),
        "sessions per user": len(sessions) / len(per_user),
        "questions": len(dataset.questions),
        **{f"{kind} questions": float(kinds[kind]) for kind in QUESTION_KINDS},
        "off-topic questions": len(dataset.off_topic),
    }
