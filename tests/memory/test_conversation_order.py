"""ConversationMemory keeps an exchange in the store before the session's next request
reads it, however soon that request comes (the store runs calls in the order made)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory_proxy.config import MemorySettings
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.records.messages import Message
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.wire.answer import Answer, TokenUsage
from memory_proxy.wire.registry import CHAT


def _asked(text: str) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}]}


def test_the_next_request_at_once_reads_the_exchange_just_answered(tmp_path: Path) -> None:
    async def main() -> None:
        memory = ConversationMemory(
            SQLiteStore(tmp_path / "memory.sqlite3", 3600), MemorySettings()
        )
        try:
            first = await memory.begin(CHAT, "alice", "s1", _asked("My name is Alice"))
            assert first is not None
            said: Message = {"role": "assistant", "content": "Hello Alice"}
            memory.finish(first, Answer(said, True, TokenUsage(), None, "stop"))
            second = await memory.begin(CHAT, "alice", "s1", _asked("What is my name?"))
            assert second is not None
            assert [m["content"] for m in second.body["messages"]] == [
                "My name is Alice",
                "Hello Alice",
                "What is my name?",
            ]
        finally:
            await memory.aclose()

    asyncio.run(main())
