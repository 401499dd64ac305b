"""The two calls a session store batches (stores/batched_calls.py): a session's history
read, and an exchange appended to it. SQLite's and PostgreSQL's rows run them alike."""

from __future__ import annotations

from typing import NamedTuple

from memory_proxy.records.messages import Message


class Load(NamedTuple):
    user_id: str
    session_id: str


class Append(NamedTuple):
    user_id: str
    session_id: str
    messages: list[Message]
    partial: bool


SessionCall = Load | Append
