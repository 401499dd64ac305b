"""Supermemory's hosted API as a recall backend (opt-in: `recall.backend: supermemory`).

Each (user id, project) is one container tag, and container tags are exact-match
namespaces, so one user's or project's memories are never searched from another's. What
leaves the machine: each memory's text (the user turn and the answer), its user id,
project, session id, client, model and time (on add), and the latest user turn (as the
search query), secrets redacted and `<private>` text left out. Only to the configured
Supermemory URL, with the Supermemory key. Nothing of a private model's exchanges: their
memories are not added, and a request that may go to a private model is not searched for
(its question is one of them).

API (Supermemory's documentation): `POST /v3/documents {content, containerTags, metadata,
customId}`; `POST /v4/search {q, containerTag, searchMode, limit}` answering
`{"results": [{"id", "memory" | "chunk", "similarity", "metadata", "updatedAt"}]}`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from memory_proxy.records.memory import GENERAL_PROJECT, MemoryRecord, Privacy, Recalled

REQUEST_TIMEOUT_SECONDS = 10.0  # adds run off the request path; searches have their own budget
_ESCAPED_IN_TAG = re.compile(r"[^A-Za-z0-9\-:.]")
_METADATA_FIELDS = ("user_id", "project", "session_id", "client", "model", "created_at")


def container_tag(user_id: str, project: str) -> str:
    """One namespace per user and project: `mp_<user>` or `mp_<user>__<project>`.

    Injective, so two users or projects never share a tag: every character outside
    letters, digits and `-:.` (`_` included) becomes `_` and two hex digits, so `__`
    appears only as the separator.
    """
    user = _escaped(user_id)
    if project == GENERAL_PROJECT:
        return f"mp_{user}"
    return f"mp_{user}__{_escaped(project)}"


def _escaped(text: str) -> str:
    return _ESCAPED_IN_TAG.sub(lambda found: "".join(f"_{b:02x}" for b in found[0].encode()), text)


class SupermemoryIndex:
    """A `RecallBackend` over Supermemory: add and search; management stays local."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        redact: Callable[[str], str] = lambda text: text,
    ) -> None:
        """`redact` keeps secrets out of what leaves the machine: the memories the
        indexer adds are redacted already, the search queries are redacted here."""
        self._redact = redact
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"authorization": f"Bearer {api_key}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
        )

    async def add(self, records: list[MemoryRecord]) -> None:
        """One document per memory, a private model's left out; `customId` is the memory
        id, so a repeat is an update of the same document, not a duplicate."""
        shared = [record for record in records if not record.private]
        answers = await asyncio.gather(*(self._add_one(record) for record in shared))
        for answer in answers:
            answer.raise_for_status()

    async def _add_one(self, record: MemoryRecord) -> httpx.Response:
        return await self._client.post(
            "/v3/documents",
            json={
                "content": record.text,
                "containerTags": [container_tag(record.user_id, record.project)],
                "customId": record.id,
                "metadata": _metadata(record),
            },
        )

    async def search(
        self,
        user_id: str,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,  # Supermemory ranks by meaning; recall checks the share
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> list[Recalled]:
        if privacy != "hosted":
            return []  # the question of a private model's exchange never leaves
        if not query.strip() or project is None:
            return []  # one container per project: "every project" is not one search
        answer = await self._client.post(
            "/v4/search",
            json={
                "q": self._redact(query),
                "containerTag": container_tag(user_id, project),
                "searchMode": "hybrid",
                "limit": limit,
            },
        )
        answer.raise_for_status()
        results = answer.json().get("results")
        hits = []
        for result in results if isinstance(results, list) else []:
            hit = _recalled(result, user_id, project)
            if hit is None or (exclude_session and hit.record.session_id == exclude_session):
                continue
            hits.append(hit)
        return hits[:limit]

    async def aclose(self) -> None:
        await self._client.aclose()


def _metadata(record: MemoryRecord) -> dict[str, str | float]:
    """Supermemory's metadata holds strings, numbers and booleans: None is left out."""
    values = {name: getattr(record, name) for name in _METADATA_FIELDS}
    return {name: value for name, value in values.items() if value is not None}


def _recalled(result: Any, user_id: str, project: str) -> Recalled | None:
    """A search result as a hit of this user and project, or None when it is not one.

    Memories that Supermemory extracted itself carry no metadata of ours: they belong to
    the container searched. A result that names another user or project is dropped.
    """
    if not isinstance(result, dict):
        return None
    text = result.get("memory") or result.get("chunk")
    similarity = result.get("similarity")
    if not isinstance(text, str) or not isinstance(similarity, int | float):
        return None
    metadata = result.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    if metadata.get("user_id", user_id) != user_id or metadata.get("project", project) != project:
        return None
    record = MemoryRecord(
        id=str(result.get("id", "")),
        user_id=user_id,
        project=project,
        session_id=_text_or_none(metadata.get("session_id")),
        client=_text_or_none(metadata.get("client")) or "supermemory",
        model=_text_or_none(metadata.get("model")),
        created_at=_created_at(metadata.get("created_at"), result.get("updatedAt")),
        text=text,
    )
    return Recalled(record, float(similarity))


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _created_at(ours: Any, updated_at: Any) -> float:
    if isinstance(ours, int | float):
        return float(ours)
    if isinstance(updated_at, str):
        try:
            return datetime.fromisoformat(updated_at.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return 0.0
