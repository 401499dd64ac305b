"""One long-term memory: an exchange (a user turn and its answer) that the proxy saw,
kept per (user id, project) for recall in later sessions. Imported by the stores and by
memory, so it imports nothing of ours."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

GENERAL_PROJECT = ""  # the user's memory outside any project

# Where a request's model may take what memory puts into it (identity/model_privacy.py):
# only to hosted providers, only to private models (`memory.private_models`), or to either
# (LiteLLM may choose: fallbacks, overlapping wildcards). What a request says is kept as
# private unless it is "hosted"; private memories go only into "private" requests.
Privacy = Literal["hosted", "private", "mixed"]


def memory_id(user_id: str, project: str, text: str) -> str:
    """The same text said twice in one project of one user is one memory."""
    digest = hashlib.sha256(f"{user_id}\0{project}\0{text}".encode())
    return digest.hexdigest()[:24]


@dataclass(frozen=True)
class MemoryRecord:
    id: str
    user_id: str
    project: str  # GENERAL_PROJECT when the request named none
    session_id: str | None
    client: str  # how the caller was recognised (the usage record's `client`)
    model: str | None
    created_at: float  # epoch seconds
    text: str  # "User: …\nAssistant: …", trimmed
    private: bool = False  # told to a private model: recalled into private models' requests only

    @classmethod
    def made(
        cls,
        id: str,
        user_id: str,
        project: str,
        session_id: str | None,
        client: str,
        model: str | None,
        created_at: float,
        text: str,
        private: bool,
    ) -> MemoryRecord:
        """The record __init__ would make, cheaper: a frozen dataclass's __init__ sets each
        field through object.__setattr__ (~14.8k instructions for these nine, ~6.4k
        this way), and the index process makes one per memory (bench_index_process)."""
        record = object.__new__(cls)
        fields = {
            "id": id,
            "user_id": user_id,
            "project": project,
            "session_id": session_id,
            "client": client,
            "model": model,
            "created_at": created_at,
            "text": text,
            "private": private,
        }
        object.__setattr__(record, "__dict__", fields)
        return record

    def describe(self, score: float | None = None) -> dict[str, Any]:
        """The record as the memories API shows it (and the export writes it)."""
        described: dict[str, Any] = {
            "id": self.id,
            "user_id": self.user_id,
            "project": self.project or None,
            "session_id": self.session_id,
            "client": self.client,
            "model": self.model,
            "created_at": self.created_at,
            "text": self.text,
            "private": self.private,
        }
        if score is not None:
            described["score"] = round(score, 4)
        return described


@dataclass(frozen=True)
class Recalled:
    """A search hit: higher scores are better matches. `relevance`: the share of the
    question's weight the memory covers (0-1, stores/relevance.py), when the backend
    computed it; recall computes it otherwise."""

    record: MemoryRecord
    score: float
    relevance: float | None = None


@dataclass(frozen=True)
class ProjectInfo:
    user_id: str
    project: str
    memory_count: int
    last_used: float

    def describe(self) -> dict[str, Any]:
        """As `GET /v1/projects` shows it; the general memory's project is null."""
        return {
            "project": self.project or None,
            "user_id": self.user_id,
            "memory_count": self.memory_count,
            "last_used": self.last_used,
        }


@dataclass(frozen=True)
class SessionSummary:
    """One conversation as the index remembers it: its first and latest memories (what
    was asked first and last), how many it left, and when."""

    session_id: str
    project: str
    client: str  # of its latest memory
    memories: int
    started_at: float
    last_at: float
    first_text: str
    last_text: str


@dataclass(frozen=True)
class PlacedBlock:
    """A recalled block put into the user turn at `turn` of a conversation, as a shared
    store keeps it: not its text but what makes it again byte for byte (recall_block.py):
    the memories in the order they were offered, the tag's suffix and the size allowed.
    `text_hash` is the turn's human text's (a stable hash, the same in every process);
    `private`: it holds a private model's memory."""

    turn: int
    text_hash: str
    suffix: str
    max_chars: int
    private: bool
    memory_ids: tuple[str, ...]
