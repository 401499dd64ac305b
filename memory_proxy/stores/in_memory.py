"""For tests and throwaway runs: conversations and usage kept in this process, gone when
it ends."""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from memory_proxy.records.messages import Message, mark_partial
from memory_proxy.records.series import UsageSeries, aggregate, checked_resolution
from memory_proxy.records.usage import Feedback, UsageRecord
from memory_proxy.stores.base import SessionInfo


@dataclass
class _Conversation:
    created: float
    updated: float
    messages: list[Message] = field(default_factory=list)


class InMemoryStore:
    """For tests and throwaway runs: gone when the process ends."""

    def __init__(
        self,
        ttl_seconds: int,
        clock: Callable[[], float] = time.time,
        max_messages: int | None = None,
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max_messages = max_messages  # a session's newest kept (None: all)
        self._conversations: dict[tuple[str, str], _Conversation] = {}

    def _live(self, key: tuple[str, str]) -> _Conversation | None:
        conversation = self._conversations.get(key)
        if conversation and conversation.updated + self._ttl <= self._clock():
            return None  # expired: invisible now, removed by purge_expired
        return conversation

    async def load(self, user_id: str, session_id: str) -> list[Message]:
        conversation = self._live((user_id, session_id))
        return [m.copy() for m in conversation.messages] if conversation else []

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        now = self._clock()
        conversation = self._live((user_id, session_id)) or _Conversation(now, now)
        conversation.messages.extend(mark_partial(m, partial) for m in messages)
        conversation.updated = now
        self._conversations[(user_id, session_id)] = conversation
        dropped = 0
        if self._max_messages is not None:
            dropped = max(0, len(conversation.messages) - self._max_messages)
            del conversation.messages[:dropped]
        return dropped

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


class InMemoryUsageLog:
    def __init__(self, max_records: int) -> None:
        self._max_records = max_records
        self._records: collections.deque[UsageRecord] = collections.deque(maxlen=max_records)
        self._feedback: dict[str, Feedback] = {}  # in the order given: oldest first

    async def add(self, records: list[UsageRecord]) -> None:
        self._records.extend(records)

    async def since(self, moment: float) -> list[UsageRecord]:
        return [record for record in self._records if record.time >= moment]

    async def find(self, request_id: str) -> UsageRecord | None:
        """Newest first: feedback mostly rates a recent answer."""
        return next((r for r in reversed(self._records) if r.request_id == request_id), None)

    async def latest(self, limit: int, user_id: str | None = None) -> list[UsageRecord]:
        newest = (r for r in reversed(self._records) if user_id is None or r.user_id == user_id)
        return list(itertools.islice(newest, limit))[::-1]

    async def series(self, first: int, last: int, bucket_seconds: int, group: str) -> UsageSeries:
        records = await self.since(first * checked_resolution(bucket_seconds))
        return aggregate(records, first, last, bucket_seconds, group)

    async def add_feedback(self, feedback: Feedback) -> None:
        self._feedback.pop(feedback.request_id, None)
        self._feedback[feedback.request_id] = feedback
        if len(self._feedback) > self._max_records:
            del self._feedback[next(iter(self._feedback))]

    async def feedback_since(self, moment: float) -> list[Feedback]:
        return [f for f in self._feedback.values() if f.request_time >= moment]

    async def aclose(self) -> None:
        self._records.clear()
        self._feedback.clear()
