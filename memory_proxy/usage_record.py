"""One forwarded LLM call, as the usage log keeps it. Imported by the stores and by
accounting, so it imports nothing of ours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass  # not frozen: one is built per request, and freezing costs 3.5x the build
class UsageRecord:
    time: float  # epoch seconds, when the request arrived
    request_id: str
    user_id: str
    session_id: str | None
    client: str  # how the user was recognised: the matched pattern, or how else
    model: str | None
    endpoint: str
    status: int
    stream: bool
    upstream_ms: float  # until LiteLLM's answer headers
    first_byte_ms: float | None
    total_ms: float  # through the last byte
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None  # LiteLLM's x-litellm-response-cost, USD

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))  # flat fields: asdict's deep copy would cost 30x more

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UsageRecord:
        """From a stored row or JSON object (SQLite keeps booleans as 0 and 1)."""
        return cls(**{**values, "stream": bool(values["stream"])})


FIELD_NAMES = tuple(f.name for f in fields(UsageRecord))
