"""Usage analytics: one record per forwarded LLM call, written off the request path into
a bounded log in the configured store, and totals grouped by user, model or client.

The log itself lives in memory_proxy.stores, beside the conversations it shares a
database with.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from memory_proxy.records.usage import Feedback, UsageRecord
from memory_proxy.stores.base import UsageLog
from memory_proxy.stores.batch_writer import DROP_REPORT_SECONDS, BatchWriter
from memory_proxy.stores.batch_writer import QUEUE_LIMIT as QUEUE_LIMIT

logger = logging.getLogger("memory_proxy.usage")

GROUPS = ("user", "model", "client", "tool")  # "tool": memory tool calls over MCP
# Finish reasons that mean the answer was cut at its token limit (OpenAI chat, Anthropic,
# OpenAI Responses), and those that mean the model would not answer.
TRUNCATED = frozenset({"length", "max_tokens", "max_output_tokens"})
REFUSED = frozenset({"content_filter", "refusal"})
DISCONNECTED = "client_disconnected"
MAX_LISTED_USERS = 20
_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS_PER_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str | None, now: float) -> float:
    """Epoch seconds from `1700000000`, an ISO 8601 time (UTC unless it says) or a
    duration back from now (`90s`, `15m`, `24h`, `7d`); everything when absent."""
    if not text:
        return 0.0
    text = text.strip()
    if duration := _DURATION.match(text):
        return now - int(duration.group(1)) * _SECONDS_PER_UNIT[duration.group(2)]
    with contextlib.suppress(ValueError):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"since={text!r}: expected epoch seconds, an ISO 8601 time or a duration "
            "such as 15m, 24h, 7d"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def checked_group(group_by: str) -> str:
    if group_by not in GROUPS:
        raise ValueError(f"group_by must be one of {', '.join(GROUPS)}")
    return group_by


def summarize(
    records: Iterable[UsageRecord],
    group_by: str,
    feedback: Iterable[Feedback] = (),
) -> dict[str, Any]:
    """Totals per user, model or client of the LLM calls, or per tool of the memory tool
    calls (the busiest first), and over all, with the feedback on those records (by
    request id). A tool call is no LLM request: it counts under `tool` only."""
    attribute = "user_id" if checked_group(group_by) == "user" else group_by
    tools = group_by == "tool"
    scores = {rating.request_id: rating.score for rating in feedback}
    groups: dict[str, _Totals] = collections.defaultdict(_Totals)
    overall = _Totals()
    for record in records:
        if record.is_tool_call != tools:
            continue
        groups[getattr(record, attribute) or "none"].add(record, scores)
        overall.add(record, scores)
    rows = [{group_by: key, **totals.describe()} for key, totals in groups.items()]
    rows.sort(key=lambda row: (-row["requests"], row[group_by]))
    return {"group_by": group_by, "data": rows, "total": overall.describe()}


@dataclass
class _Totals:
    requests: int = 0
    errors: int = 0
    streams: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    first_byte_ms: float = 0.0
    timed: int = 0
    total_ms: float = 0.0
    hits: int = 0
    last_seen: float | None = None
    finish_reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    rated: int = 0
    score: float = 0.0
    users: set[str] = field(default_factory=set)
    questions: int = 0  # requests whose new question recall searched
    blocks: int = 0  # of them, those given a recalled block
    recalled_tokens: int = 0

    def add(self, record: UsageRecord, scores: Mapping[str, float]) -> None:
        self.requests += 1
        self.errors += record.status >= 400
        self.last_seen = max(self.last_seen or record.time, record.time)
        self.finish_reasons[record.finish_reason or "unknown"] += 1
        if (score := scores.get(record.request_id)) is not None:
            self.rated += 1
            self.score += score
        if len(self.users) < MAX_LISTED_USERS:
            self.users.add(record.user_id)
        self.streams += record.stream
        self.prompt_tokens += record.prompt_tokens or 0
        self.completion_tokens += record.completion_tokens or 0
        self.cost += record.cost or 0.0
        self.total_ms += record.total_ms
        self.hits += record.hits or 0
        if record.first_byte_ms is not None:
            self.first_byte_ms += record.first_byte_ms
            self.timed += 1
        if record.recalled_tokens is not None:
            self.questions += 1
            self.blocks += record.recalled_tokens > 0
            self.recalled_tokens += record.recalled_tokens

    def describe(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "streams": self.streams,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": round(self.cost, 6),
            "mean_first_byte_ms": round(self.first_byte_ms / self.timed, 1) if self.timed else None,
            "mean_total_ms": round(self.total_ms / self.requests, 2) if self.requests else None,
            "hits": self.hits,
            "last_seen": self.last_seen,
            "users": sorted(self.users),
            "finish_reasons": dict(self.finish_reasons.most_common()),
            "error_rate": self._rate(self.errors),
            "truncated": (truncated := self._count(TRUNCATED)),
            "truncation_rate": self._rate(truncated),
            "refusals": self._count(REFUSED),
            "client_disconnects": self.finish_reasons[DISCONNECTED],
            "feedback": {
                "count": self.rated,
                "mean": round(self.score / self.rated, 3) if self.rated else None,
            },
            "recall": {
                "questions": self.questions,
                "blocks": self.blocks,
                "block_share": round(self.blocks / self.questions, 4) if self.questions else None,
                "tokens": self.recalled_tokens,
                "mean_tokens": round(self.recalled_tokens / self.blocks, 1)
                if self.blocks
                else None,
            },
        }

    def _count(self, reasons: frozenset[str]) -> int:
        return sum(self.finish_reasons[reason] for reason in reasons)

    def _rate(self, count: int) -> float | None:
        return round(count / self.requests, 4) if self.requests else None


class UsageRecorder:
    """Takes records on the request path at the cost of a queue put; a background task
    writes them in batches, one transaction each. A failing store loses records, never a
    request; every lost record is counted (`on_drop`) and logged, at most once a minute."""

    def __init__(
        self,
        log: UsageLog,
        on_drop: Callable[[int], None] = lambda count: None,
        report_every: float = DROP_REPORT_SECONDS,
    ) -> None:
        self.log = log
        self._writer = BatchWriter(
            log.add, "usage record", "the usage log", logger, on_drop, report_every
        )

    @property
    def dropped(self) -> int:
        return self._writer.dropped

    def record(self, record: UsageRecord) -> None:
        self._writer.put(record)

    def start(self) -> None:
        self._writer.start()

    async def written(self) -> None:
        """Returns once every record queued so far is written (or a few seconds passed)."""
        await self._writer.written()

    async def aclose(self) -> None:
        """Write what is queued (for a few seconds at most), then close the log."""
        await self._writer.aclose()
        await self.log.aclose()
