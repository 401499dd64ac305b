"""Why an answer ended, in each of the three chat formats: OpenAI's `finish_reason`
(`choices[0]`), Anthropic's `stop_reason` (on the message, or a stream's `message_delta`)
and the Responses API's `status` (with `incomplete_details.reason` when incomplete).

`MAY_END` finds, without decoding, the SSE events that can say it: a reason key with a
string value (OpenAI repeats `"finish_reason":null` in every chunk), or the event ending a
Responses stream. Inside a JSON string every quote is escaped, so text cannot match.
"""

from __future__ import annotations

import re
from typing import Any

MAY_END = re.compile(
    rb'_reason"\s*:\s*"|"response\.(?:completed|incomplete|failed)"',
)
_REASON_VALUE = re.compile(rb'"(?:finish|stop)_reason"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')
MAX_REASON_LENGTH = 64


def reason_in(answer: dict[str, Any]) -> str | None:
    """From a whole JSON answer or one decoded SSE event; None when it says nothing."""
    if answer.get("type") in ("response.completed", "response.incomplete", "response.failed"):
        answer = answer.get("response") or {}
    choices = answer.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return _text(choices[0].get("finish_reason"))
    delta = answer.get("delta")
    if answer.get("type") == "message_delta" and isinstance(delta, dict):
        return _text(delta.get("stop_reason"))
    if "stop_reason" in answer:
        return _text(answer["stop_reason"])
    if answer.get("object") == "response" or "incomplete_details" in answer:
        details = answer.get("incomplete_details")
        if answer.get("status") == "incomplete" and isinstance(details, dict):
            return _text(details.get("reason")) or "incomplete"
        return _text(answer.get("status"))
    return None


def reason_in_tail(data: bytes | bytearray) -> str | None:
    """The first `finish_reason` or `stop_reason` in the end of a JSON answer whose
    beginning was not kept (only OpenAI's and Anthropic's come late enough)."""
    found = _REASON_VALUE.search(data)
    return found.group(1).decode() if found else None


def _text(value: Any) -> str | None:
    return value[:MAX_REASON_LENGTH] if isinstance(value, str) and value else None
