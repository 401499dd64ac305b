"""A request naming no session: its answer's message is read by the index process from the
bytes the proxy kept (wire/answer.py `read_kept`), not on the proxy's event loop. Every
chat API, JSON and streamed, still becomes the memory it was (the usage read alongside:
tests/wire/test_answer_kept.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.config.recall import RecallSettings
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
