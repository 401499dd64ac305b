"""One forwarded LLM call, as the usage log keeps it. Imported by the stores and by
accounting, so it imports nothing of ours."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass  # not frozen: one is built per request, and freezing costs 3.5x the build
class UsageRecord:
    """A forwarded LLM call, or a memory tool call over MCP (`tool` names it: no model,
    no tokens; `total_ms` is the tool's time, `hits` what it found or listed)."""

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
    # Why the answer ended: the provider's finish_reason / stop_reason / Responses status
    # ("stop", "length", "max_tokens", "content_filter", …) or, when there was no such
    # answer, the proxy's outcome ("client_disconnected", "upstream_cut", …). None for
    # records written before it was kept.
    finish_reason: str | None = None
    tool: str | None = None  # an MCP tool call: the tool's name
    hits: int | None = None  # the memories it found, listed or stored
    # The recalled block put in for this request's new question, in tokens (characters / 4,
    # as recall.max_tokens counts): 0 when none was; None when no question was searched.
    recalled_tokens: int | None = None

    @property
    def is_tool_call(self) -> bool:
        return self.tool is not None

    def as_dict(self) -> dict[str, Any]:
        # Flat fields: asdict's deep copy would cost 30x more, and dict(vars(self)) 8x more
        # than copying the instance's dict (its keys are shared by every record's).
        return self.__dict__.copy()

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> UsageRecord:
        """From a stored row or JSON object (SQLite keeps booleans as 0 and 1)."""
        return cls(**{**values, "stream": bool(values["stream"])})


FIELD_NAMES = tuple(f.name for f in fields(UsageRecord))


FEEDBACK_SCORES = (-1.0, 1.0)  # bad .. good; 0 is neutral
MAX_FEEDBACK_COMMENT = 2000


@dataclass(frozen=True)
class Feedback:
    """A rating of one answer, by its request id. The latest rating of a request wins."""

    request_id: str
    request_time: float  # the rated request's `time`: feedback is read by that
    score: float  # within FEEDBACK_SCORES
    comment: str
    time: float  # when it was given

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))
