"""Recall backends for tests: a word-overlap index, and one that is slow or broken."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from memory_proxy.records.memory import MemoryRecord, Recalled

_WORD = re.compile(r"\w{3,}")


def words(text: str) -> set[str]:
    return {word.lower() for word in _WORD.findall(text)}


@dataclass
class WordIndex:
    """Scores a memory by the words it shares with the query."""

    records: dict[str, MemoryRecord] = field(default_factory=dict)
    searches: list[tuple[str, str | None, str, str | None]] = field(default_factory=list)
    closed: bool = False

    async def add(self, records: list[MemoryRecord]) -> None:
        for record in records:
            self.records.setdefault(record.id, record)

    async def search(
        self,
        user_id: str,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,  # recall checks it again: this index scores every match
    ) -> list[Recalled]:
        self.searches.append((user_id, project, query, exclude_session))
        hits = [
            Recalled(record, float(len(words(query) & words(record.text))))
            for record in self.records.values()
            if record.user_id == user_id
            and (project is None or record.project == project)
            and (exclude_session is None or record.session_id != exclude_session)
        ]
        hits = [hit for hit in hits if hit.score > 0]
        return sorted(hits, key=lambda hit: -hit.score)[:limit]

    async def aclose(self) -> None:
        self.closed = True


class SlowIndex(WordIndex):
    async def search(self, *args: object, **kwargs: object) -> list[Recalled]:
        await asyncio.sleep(5)
        return []


class BrokenIndex(WordIndex):
    async def add(self, records: list[MemoryRecord]) -> None:
        raise OSError("disk full")

    async def search(self, *args: object, **kwargs: object) -> list[Recalled]:
        raise OSError("index unavailable")
