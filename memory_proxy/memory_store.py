"""Where conversations live: one small interface, an in-memory store, and the factory
that opens the configured one.

A conversation is keyed by (user id, session id): the same session id under two users is
two conversations. Messages are stored in one neutral shape, `{"role", "content"}` with
text content, whatever API format the client spoke, so a session can be continued from
any client.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from memory_proxy.config import MemorySettings

Message = dict[str, Any]


class StoreUnavailable(Exception):
    """The configured store cannot be opened at all; the message names the setting."""


@dataclass(frozen=True)
class SessionInfo:
    user_id: str
    session_id: str
    message_count: int
    created: float
    updated: float
    expires: float

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "user_id": self.user_id,
            "message_count": self.message_count,
            "created": self.created,
            "updated": self.updated,
            "expires": self.expires,
        }


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of blocks
    (OpenAI `text`, Anthropic `text`, Responses `input_text` / `output_text` all carry
    a "text" field)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def mark_partial(message: Message, partial: bool) -> Message:
    """An answer from a stream that was cut short is kept, and marked so."""
    if partial and message["role"] == "assistant":
        return {**message, "partial": True}
    return message


class MemoryStore(Protocol):
    async def load(self, user_id: str, session_id: str) -> list[Message]: ...

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> None: ...

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]: ...

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None: ...

    async def delete(self, user_id: str, session_id: str) -> bool: ...

    async def purge_expired(self) -> int: ...

    async def aclose(self) -> None: ...


@dataclass
class _Conversation:
    created: float
    updated: float
    messages: list[Message] = field(default_factory=list)


class InMemoryStore:
    """For tests and throwaway runs: gone when the process ends."""

    def __init__(self, ttl_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._conversations: dict[tuple[str, str], _Conversation] = {}

    def _live(self, key: tuple[str, str]) -> _Conversation | None:
        conversation = self._conversations.get(key)
        if conversation and conversation.updated + self._ttl <= self._clock():
            return None  # expired: invisible now, removed by purge_expired
        return conversation

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        conversation = self._live((user_id, session_id))
        return [dict(m) for m in conversation.messages] if conversation else []

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> None:
        now = self._clock()
        conversation = self._live((user_id, session_id)) or _Conversation(now, now)
        conversation.messages.extend(mark_partial(m, partial) for m in messages)
        conversation.updated = now
        self._conversations[(user_id, session_id)] = conversation

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]:
        infos = [
            info
            for (owner, session_id) in list(self._conversations)
            if user_id is None or owner == user_id
            if (info := await self.session(owner, session_id)) is not None
        ]
        infos.sort(key=lambda info: info.updated, reverse=True)
        return infos[offset : offset + limit]

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None:
        conversation = self._live((user_id, session_id))
        if conversation is None:
            return None
        return SessionInfo(
            user_id,
            session_id,
            len(conversation.messages),
            conversation.created,
            conversation.updated,
            conversation.updated + self._ttl,
        )

    async def delete(self, user_id: str, session_id: str) -> bool:
        return self._conversations.pop((user_id, session_id), None) is not None

    async def purge_expired(self) -> int:
        expired = [key for key in self._conversations if self._live(key) is None]
        for key in expired:
            del self._conversations[key]
        return len(expired)

    async def aclose(self) -> None:
        self._conversations.clear()


def open_store(settings: MemorySettings) -> MemoryStore:
    if settings.store == "memory":
        return InMemoryStore(settings.ttl_seconds)
    if settings.store == "sqlite":
        from memory_proxy.sqlite_store import SQLiteStore

        return SQLiteStore(settings.sqlite_path, settings.ttl_seconds)
    from memory_proxy.redis_store import RedisStore

    return RedisStore(settings.redis_url, settings.ttl_seconds)
