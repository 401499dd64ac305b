"""The texts and terms of the memories recent searches returned, kept for the next ones.

A search reads its hits' texts packed (packed_text.py) and weighs each by the terms it
holds (relevance.py): unpacking and stemming a memory of ~400 characters costs about
35 us of Python, as much as ranking a few dozen matches in FTS5, and a search returns up
to `recall.limit` hits. The same memories come back often (a project's telling memories
answer many questions; a conversation asks around one topic), so the last few thousand
are kept, keyed by their packed bytes: the same bytes are the same text, whatever row or
id holds them, so a kept entry can never be stale.
"""

from __future__ import annotations

from typing import Any

from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.packed_text import unpack
from memory_proxy.stores.relevance import terms_of

KEPT = 2048  # about 2 kB each (a memory's text and its terms): a few MB at most


class RecentHits:
    """Rows of RECORD_COLUMNS as records with their terms, the recent ones' unpacked and
    stemmed once. Used from one thread (a search thread's)."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._texts: dict[bytes | str, tuple[str, frozenset[str]]] = {}

    def read(self, row: tuple[Any, ...]) -> tuple[MemoryRecord, frozenset[str]]:
        """A row's record (its text unpacked, its private flag a bool) and its terms."""
        id_, user_id, project, session_id, client, model, created_at, packed, private = row
        found = self._texts.get(packed)
        if found is None:
            text = unpack(packed)
            found = (text, frozenset(terms_of(text)))
            if len(self._texts) >= self._kept:
                del self._texts[next(iter(self._texts))]  # the oldest kept
            self._texts[packed] = found
        text, terms = found
        record = MemoryRecord(
            id_, user_id, project, session_id, client, model, created_at, text, bool(private)
        )
        return record, terms
