"""What every store offers: conversations keyed by (user id, session id), and the usage
log. The same session id under two users is two conversations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from memory_proxy.messages import Message
from memory_proxy.usage_record import UsageRecord


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


class UsageLog(Protocol):
    async def add(self, records: list[UsageRecord]) -> None: ...

    async def since(self, moment: float) -> list[UsageRecord]: ...

    async def aclose(self) -> None: ...
