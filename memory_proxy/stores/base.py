"""What every store offers: conversations keyed by (user id, session id), and the usage
log, and the long-term memory index. The same session id under two users is two
conversations; the same project under two users is two memories."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from memory_proxy.errors import ProxyError
from memory_proxy.records.memory import (
    MemoryRecord,
    PlacedBlock,
    Privacy,
    ProjectInfo,
    Recalled,
    SessionSummary,
)
from memory_proxy.records.messages import Message

if TYPE_CHECKING:  # the usage log's records, in annotations only: the index process (which
    # imports this module) has no use for them
    from memory_proxy.records.series import UsageSeries
    from memory_proxy.records.usage import Feedback, UsageRecord

# What failed when memory's store failed (memory_proxy_memory_store_errors_total's
# `operation`): a session's history loaded or appended, expired sessions purged, a recall
# search (the local index, Supermemory, or by meaning), where recalled blocks went read
# or written.
StoreOperation = Literal["load", "append", "purge", "search", "placements_read", "placements_write"]
STORE_OPERATIONS: tuple[StoreOperation, ...] = get_args(StoreOperation)


class StoreUnavailable(ProxyError):
    """The configured store cannot be opened at all; the message names the setting."""

    status = 503


class SearchBusy(ProxyError):
    """A recall backend has more searches waiting than it can finish within its time
    budget: it refuses this one at once rather than answer too late. Recall goes on
    without; the memories API answers 503, to try again in a second."""

    status = 503
    retry_after = 1


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


@dataclass(frozen=True)
class FileUse:
    """How much of the memory file is in use (free pages not counted), and how many
    memories it holds."""

    used_bytes: int
    memories: int


class MemoryStore(Protocol):
    """Sessions keep their newest `memory.max_session_messages` messages; deleting one
    (or its expiry) leaves nothing of it where the store keeps data."""

    def load(self, user_id: str, session_id: str) -> Awaitable[list[Message]]:
        """The session's messages, oldest first. An awaitable, not only a coroutine: a
        store that queues calls for a thread hands back the call's future itself."""
        ...

    def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> Awaitable[int]:
        """How many of the session's oldest messages were dropped to keep it in bounds."""
        ...

    async def list_sessions(
        self, user_id: str | None, limit: int, offset: int
    ) -> list[SessionInfo]: ...

    async def session(self, user_id: str, session_id: str) -> SessionInfo | None: ...

    async def delete(self, user_id: str, session_id: str) -> bool: ...

    async def purge_expired(self) -> int: ...

    async def aclose(self) -> None: ...


class UsageLog(Protocol):
    """The usage records and the feedback on them; feedback is kept (at most
    `max_records` of it) while a rating of a dropped record is harmless."""

    async def add(self, records: list[UsageRecord]) -> None: ...

    async def since(self, moment: float) -> list[UsageRecord]: ...

    async def find(self, request_id: str) -> UsageRecord | None: ...

    async def latest(self, limit: int, user_id: str | None = None) -> list[UsageRecord]:
        """The newest `limit` records (of `user_id` when named), oldest first."""
        ...

    async def series(self, first: int, last: int, bucket_seconds: int, group: str) -> UsageSeries:
        """Buckets `first` to `last` (indexes: time // bucket_seconds, one of RESOLUTIONS),
        grouped by `group`, a SERIES_GROUPS field."""
        ...

    async def add_feedback(self, feedback: Feedback) -> None: ...

    async def feedback_since(self, moment: float) -> list[Feedback]:
        """The latest rating of each request that arrived at `moment` or later."""
        ...

    async def aclose(self) -> None: ...


class Placements(Protocol):
    """Where each conversation's recalled blocks went, shared by every process on the
    store (memory/placed_blocks.py), beside the memories they name."""

    async def placed(
        self, user_id: str, session_id: str
    ) -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
        """The conversation's blocks, each with those of its memories still stored."""
        ...

    async def place(self, user_id: str, session_id: str, block: PlacedBlock, now: float) -> None:
        """The block at its turn, replacing the one there."""
        ...

    async def drop(self, user_id: str, session_id: str, turns: list[int]) -> None: ...

    async def aclose(self) -> None: ...


class RecallBackend(Protocol):
    """Where long-term memories are added and searched: the local index, or a hosted one.

    `search` with `project` None means every project of the user; a string
    (GENERAL_PROJECT included) means exactly that one. Higher scores are better.
    `min_share`: the share of the question's weight a memory must cover to be worth
    returning (relevance.py; recall asks for `recall.min_score` and checks it again); a
    backend may use it to return less, or ignore it. `fill_share`: once a hit covers
    `min_share`, the others covering this much are worth returning too (recall fills an
    answered question's block with them). A backend that weighs the question's
    words gives each hit its `relevance`; recall counts the words alike for the others.

    `privacy`: where the request searching may go (records.memory.Privacy). A private
    model's memories are found only for "private"; a backend off this machine is asked
    only for "hosted" (a private model's question stays here) and is never given a
    private memory to add.

    A caller that stops waiting cancels the search; a backend stops the work where it can
    (the SQLite index does not start it, or interrupts it; Supermemory's HTTP request is
    closed). A backend with too much waiting already may raise SearchBusy at once: when
    called (the SQLite and PostgreSQL indexes: a refused search costs its caller no
    coroutine, no timer) or when awaited.
    """

    async def add(self, records: list[MemoryRecord]) -> None: ...

    def search(
        self,
        user_id: str,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> Awaitable[list[Recalled]]: ...

    async def aclose(self) -> None: ...


class MemoryIndex(RecallBackend, Protocol):
    """The local index: a recall backend that can also be listed and forgotten.

    Records with an id already stored are not stored again. Forgetting erases: once a
    method that forgets returns, the text is gone from the index's files. `user_id` None
    means every
    user (for the memories API and CLI; recall always names one); `project` None means
    every project. Memory ids are unique across users, so one memory is found by its id
    alone.
    """

    def search(
        self,
        user_id: str | None,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> Awaitable[list[Recalled]]: ...

    async def list_memories(
        self,
        user_id: str | None,
        project: str | None,
        limit: int,
        offset: int,
        *,
        before: float | None = None,
        privacy: Privacy = "private",
    ) -> list[MemoryRecord]:
        """Newest first; made before `before` when given. A private model's memories only
        for `privacy` "private" (the owner's views show them, marked)."""
        ...

    async def recent_sessions(
        self, user_id: str, project: str, limit: int, *, privacy: Privacy = "hosted"
    ) -> list[SessionSummary]:
        """The user's latest conversations in the project, the most recent first (those
        that left memories; private models' left out unless `privacy` is "private")."""
        ...

    async def get(self, user_id: str | None, memory_id: str) -> MemoryRecord | None: ...

    async def stored(self, memory_ids: Collection[str]) -> set[str]:
        """Those of `memory_ids` that are stored already (of any user)."""
        ...

    async def delete(self, user_id: str | None, memory_id: str) -> bool: ...

    async def forget_project(self, user_id: str | None, project: str) -> int: ...

    async def forget_user(self, user_id: str) -> int:
        """Every memory of the user, in every project."""
        ...

    async def forget_older_than(self, moment: float, limit: int) -> int:
        """Up to `limit` of the oldest memories made before `moment`; `erase` follows."""
        ...

    async def forget_oldest(self, limit: int) -> int:
        """The `limit` oldest memories; `erase` follows."""
        ...

    async def erase(self) -> bool:
        """What the memories forgotten by the two methods above left, removed (`delete`
        and the `forget_*` of a project or user erase at once). False when it must be
        tried again later."""
        ...

    async def used_bytes(self) -> int:
        """The file's bytes in use (cheap: no memory is counted)."""
        ...

    async def use(self) -> FileUse: ...

    async def projects(self, user_id: str | None) -> list[ProjectInfo]: ...

    def export(
        self, user_id: str | None, project: str | None, *, batch: int = 500
    ) -> AsyncGenerator[list[MemoryRecord], None]:
        """Every memory (of one user and/or one project when named, of everyone
        otherwise), oldest first, in batches."""
        ...
