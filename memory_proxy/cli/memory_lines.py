"""Exported memories read back (`memory-proxy memories import`): each JSON line becomes a
`MemoryRecord`, or says what is wrong with it.

Every field is checked as the request path checks what it stores, because an imported
memory goes where a relayed one goes: into the index, and from there into later prompts
and headers. Ids are ids a request could carry (no line break to end up in a header), the
text is no longer than a memory is ever made, the time is a real one (a `created_at` of
1e20 made every request that recalled it lose all its memory), and the labels are short
strings without control characters.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeGuard

import orjson

from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.memory.indexing import MAX_MEMORY_CHARS
from memory_proxy.records.memory import MemoryRecord, memory_id

MAX_LABEL_CHARS = 256  # a client's or a model's name
FUTURE_TOLERANCE_SECONDS = 86_400  # clocks differ; a memory from next year is an error
_LABEL = re.compile(rf"[^\x00-\x1f\x7f-\x9f]{{1,{MAX_LABEL_CHARS}}}\Z")
_NO_CONTROL = "no control characters"


def parsed_lines(lines: Iterable[str]) -> Iterator[tuple[int, MemoryRecord | str]]:
    """Each non-blank line's record, or what is wrong with it, with its line number."""
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                yield number, record_from_json(orjson.loads(line))
            except ValueError as exc:  # orjson's errors included
                yield number, str(exc)


def record_from_json(item: Any) -> MemoryRecord:
    """A memory from one exported object; ValueError says what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("expected a JSON object")
    user_id, project, text = item.get("user_id"), item.get("project") or "", item.get("text")
    session_id, model = item.get("session_id"), item.get("model")
    client = item.get("client", "import")
    if not _is_id(user_id):
        raise ValueError("user_id: expected a user id")
    if not isinstance(project, str) or (project and not _is_id(project)):
        raise ValueError("project: expected a project id or null")
    if not (session_id is None or _is_id(session_id)):
        raise ValueError("session_id: expected a session id or null")
    if not isinstance(text, str) or not text:
        raise ValueError("text: expected some text")
    if len(text) > MAX_MEMORY_CHARS:
        raise ValueError(f"text: expected at most {MAX_MEMORY_CHARS} characters")
    created_at = _created_at(item.get("created_at"))
    if not _is_label(client):
        raise ValueError(f"client: expected 1 to {MAX_LABEL_CHARS} characters, {_NO_CONTROL}")
    if not (model is None or _is_label(model)):
        raise ValueError(
            f"model: expected 1 to {MAX_LABEL_CHARS} characters, {_NO_CONTROL}, or null"
        )
    private = item.get("private", False)  # exports from before private models: hosted
    if not isinstance(private, bool):
        raise ValueError("private: expected true or false")
    derived = memory_id(user_id, project, text)
    if item.get("id", derived) != derived:
        raise ValueError("id: does not match the memory's user, project and text (leave it out)")
    return MemoryRecord(
        derived, user_id, project, session_id, client, model, created_at, text, private
    )


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and VALID_ID.match(value) is not None


def _is_label(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and _LABEL.match(value) is not None


def _created_at(value: Any) -> float:
    """Epoch seconds from 1970 to a day from now."""
    latest = time.time() + FUTURE_TOLERANCE_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("created_at: expected epoch seconds")
    if (isinstance(value, float) and not math.isfinite(value)) or not 0 <= value <= latest:
        raise ValueError("created_at: expected epoch seconds from 1970 to tomorrow")
    return float(value)
