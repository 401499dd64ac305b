"""The two calls a session store batches (stores/batched_calls.py): a session's history
read, and an exchange appended to it. SQLite's and PostgreSQL's rows run them alike."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeVar

import orjson

from memory_proxy.records.messages import Message, mark_partial

Packed = TypeVar("Packed")


class Load(NamedTuple):
    user_id: str
    session_id: str


class Append(NamedTuple):
    user_id: str
    session_id: str
    messages: list[Message]
    partial: bool

    def packed(self, pack: Callable[[bytes], Packed]) -> list[Packed] | Exception:
        """Each message's JSON (marked partial as the append says) as `pack` keeps it for
        its store, or why one could not be written (the append fails alone)."""
        try:
            return [pack(orjson.dumps(mark_partial(m, self.partial))) for m in self.messages]
        except Exception as exc:
            return exc


SessionCall = Load | Append
