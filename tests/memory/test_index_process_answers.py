"""A request naming no session: its answer's message is read by the index process from the
bytes the proxy kept (wire/kept.py), not on the proxy's event loop. Every
chat API, JSON and streamed, still becomes the memory it was (the usage read alongside:
tests/wire/test_answer_kept.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory import index_process
from memory_proxy.memory.index_process import IndexProcess
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.wire.base import AnswerParser
from tests.fake_upstream import FakeUpstream
from tests.support import serve, wait_until

ALICE = {"x-memory-user-id": "alice", "x-memory-project": "shop"}
REPLY = "The staging database is called heron"


def body(path: str, question: str, stream: bool) -> dict[str, Any]:
    if path == "/v1/responses":
        return {"model": "m", "input": question, "stream": stream}
    turns = [{"role": "user", "content": question}]
    asked = {"model": "m", "messages": turns, "stream": stream}
    return {**asked, "max_tokens": 100} if path == "/v1/messages" else asked


def test_every_api_streamed_or_not_is_remembered_without_its_message_read_in_the_proxy(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream, url = fake_upstream
    upstream.reply_text = REPLY

    def not_here(self: AnswerParser) -> None:
        raise AssertionError("the message was read in the proxy's process")

    monkeypatch.setattr(AnswerParser, "message", not_here)  # the index process's is its own
    memory = MemorySettings(sqlite_path=tmp_path / "memory.sqlite3")
    settings = dataclasses.replace(
        Settings(), litellm_url=url, memory=memory, recall=RecallSettings(timeout_ms=60_000)
    )
    app = MemoryProxy(settings)
    asked = [
        (path, f"Where is staging {path} {stream}?", stream)
        for path in ("/v1/chat/completions", "/v1/messages", "/v1/responses")
        for stream in (False, True)
    ]
    with serve(app) as proxy:
        for path, question, stream in asked:
            answer = httpx.post(f"{proxy}{path}", json=body(path, question, stream), headers=ALICE)
            assert answer.status_code == 200 and "heron" in answer.text

        def texts() -> set[str]:
            found = httpx.get(f"{proxy}/v1/memories", params={"user_id": "alice"})
            return {memory["text"] for memory in found.json()["data"]}

        wait_until(lambda: len(texts()) == len(asked))
        assert texts() == {f"User: {question}\nAssistant: {REPLY}" for _, question, _ in asked}


def kept(message: dict[str, Any]) -> tuple[str, str, bytes]:
    """A chat answer's bytes, kept as the proxy keeps them (wire/answer.py KeptAnswer)."""
    return ("chat", "json", json.dumps({"choices": [{"message": message}]}).encode())


def test_past_the_backlog_a_kept_answer_is_read_in_the_proxy_and_the_same_memory_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that falls behind is sent texts, not answers' bytes: the proxy holds no
    more than KEPT_UNANSWERED answers' bytes, and the memories are the same."""
    path = tmp_path / "memory.sqlite3"
    settings = dataclasses.replace(Settings(), memory=MemorySettings(sqlite_path=path))
    monkeypatch.setattr(index_process, "KEPT_UNANSWERED", 1)
    losses: list[int] = []
    calls = {"role": "assistant", "content": "", "tool_calls": [{"id": "c", "function": {}}]}
    answers = [kept({"role": "assistant", "content": f"answer {n}"}) for n in range(3)]

    async def main() -> tuple[int, list[str]]:
        indexer = IndexProcess(settings, losses.append, lambda text: text)
        for number, answer in enumerate([*answers, kept(calls)]):
            indexer.remember(
                user_id="alice",
                project="shop",
                session_id=None,
                client="c",
                model="m",
                question=f"question {number}",
                answer=answer,
            )
        unanswered = indexer.unanswered  # the call of tools made no memory: not queued
        await indexer.aclose()
        index = SQLiteMemoryIndex(path)
        try:
            return unanswered, [m.text for m in await index.list_memories(None, None, 10, 0)]
        finally:
            await index.aclose()

    unanswered, written = asyncio.run(main())
    assert unanswered == 3 and losses == []
    assert sorted(written) == [f"User: question {n}\nAssistant: answer {n}" for n in range(3)]
