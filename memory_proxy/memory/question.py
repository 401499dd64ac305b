"""The human's question in a chat request, per API format: what recall searches for and
what the index keeps.

Agents wrap what the human typed: Claude Code adds `<system-reminder>` blocks (and, from
2.1, a system-role environment message after the question), the Codex CLI sends
`<environment_context>` and AGENTS.md instructions as user messages, and the proxy's own
recalled block sits in the latest turn. Those are stripped, and so is the user's
`<private>` text (never searched for, never indexed); a user message
left with no text (tool results only, in an agent's tool loop) asks nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from memory_proxy.memory.private_text import PRIVATE_MARKER, without_private
from memory_proxy.records.messages import ApiKind, text_of

RECALLED_TAG = "recalled-memories"
# Blocks that clients (and the proxy) add to a user turn: not the human's words.
WRAPPER_TAGS = (
    RECALLED_TAG,
    "system-reminder",
    "environment_context",
    "user_instructions",
    "INSTRUCTIONS",
    "command-name",
    "command-message",
    "local-command-stdout",
    "local-command-stderr",
    "local-command-caveat",
)
MAX_SCANNED_CHARS = 32_000  # of one turn's text; the rest is not searched or stored
MAX_QUERY_CHARS = 1000
_WRAPPERS = re.compile(r"<(" + "|".join(map(re.escape, WRAPPER_TAGS)) + r")>.*?</\1>\s*", re.DOTALL)
# A block cut short (an answer quoting it, trimmed) is removed to the end all the same.
_RECALLED = re.compile(rf"<{RECALLED_TAG}>.*?(?:</{RECALLED_TAG}>\s*|\Z)", re.DOTALL)
_WORD = re.compile(r"\w\w")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class HumanTurn:
    index: int  # the message's position in `messages` (Responses: in `input`)
    text: str  # what the human wrote, wrappers stripped; never empty
    latest: bool  # followed by no answer or tool result: a new question


def without_wrappers(text: str) -> str:
    text = text[:MAX_SCANNED_CHARS]
    return _WRAPPERS.sub("", text).strip() if "<" in text else text.strip()


def without_recalled(text: str) -> str:
    """Text with any recalled block removed: recalled memories are never stored back."""
    return _RECALLED.sub("", text) if RECALLED_TAG in text else text


def last_human_turn(api: ApiKind, body: dict[str, Any]) -> HumanTurn | None:
    """The last user message with human text, or None."""
    turns = _turns(api, body)
    if turns is None:
        return None
    for index in range(len(turns) - 1, -1, -1):
        text = _human_text(api, turns[index])
        if text:
            return HumanTurn(index, text, _only_instructions(turns[index + 1 :]))
    return None


def _only_instructions(turns: list[Any]) -> bool:
    """Nothing but system or developer messages: the turn before them is still the newest
    question (Claude Code 2.1 sends its environment as a system message after it)."""
    return all(isinstance(t, dict) and t.get("role") in ("system", "developer") for t in turns)


def human_text_at(api: ApiKind, body: dict[str, Any], index: int) -> str | None:
    turns = _turns(api, body)
    if turns is None or not 0 <= index < len(turns):
        return None
    return _human_text(api, turns[index])


def search_query(turn: HumanTurn | None) -> str | None:
    """The recall query: the latest turn's text, bounded; None when there is no new
    question (the last message is no human's, or has no words)."""
    if turn is None or not turn.latest:
        return None
    text = turn.text[: MAX_QUERY_CHARS * 2].replace(PRIVATE_MARKER, " ")  # not a topic
    query = _SPACES.sub(" ", text).strip()[:MAX_QUERY_CHARS]
    return query if _WORD.search(query) else None


def exchanges(api: ApiKind, body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(question, final answer) pairs the request already carries: a human turn and the
    last assistant text without tool calls before the next human turn."""
    turns = _turns(api, body) or []
    question: str | None = None
    answer: str | None = None
    for turn in turns:
        role = turn.get("role")
        if role == "user" and (text := _human_text(api, turn)):
            if question and answer:
                yield question, answer
            question, answer = text, None
        elif role == "assistant" and not turn.get("tool_calls"):
            content = turn.get("content")
            if not _calls_tools(content):
                answer = text_of(content) or answer
    if question and answer:
        yield question, answer


def _calls_tools(content: Any) -> bool:
    """An Anthropic assistant message with `tool_use` blocks is not a final answer."""
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_use" for block in content
    )


def _turns(api: ApiKind, body: dict[str, Any]) -> list[Any] | None:
    turns = body.get("input") if api == "responses" else body.get("messages")
    if api == "responses" and isinstance(turns, str):
        return [{"role": "user", "content": turns}]
    return turns if isinstance(turns, list) else None


def _human_text(api: ApiKind, turn: Any) -> str:
    if not isinstance(turn, dict) or turn.get("role") != "user":
        return ""
    if api == "responses" and turn.get("type", "message") != "message":
        return ""
    content = turn.get("content")
    if isinstance(content, list):  # tool results and images are not what the human wrote
        content = [
            part
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text")
        ]
    return without_private(without_wrappers(text_of(content)))
