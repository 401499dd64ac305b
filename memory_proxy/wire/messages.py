"""Anthropic messages (`/v1/messages`): turns are `messages` of text and content blocks
(`tool_use`, `tool_result`; converted by anthropic_turns.py), the system prompt is the
separate `system` field, an answer is a message of `content` blocks (a stream:
`content_block_start` / `content_block_delta` events, `message_stop` at its end). Streams
always carry their token counts: nothing needs asking.
"""

from __future__ import annotations

from typing import Any

from memory_proxy.records.messages import Message, well_formed
from memory_proxy.wire.anthropic_turns import from_anthropic, to_anthropic, tool_results_in
from memory_proxy.wire.base import (
    AnswerParser,
    ChatFormat,
    Turn,
    appended,
    as_index,
    as_list,
    as_object,
    as_text,
    reason_text,
)

# Cached prompt tokens are prompt tokens too (written to the cache, or read from it).
_PROMPT_PARTS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
_USAGE_KEYS = frozenset({*_PROMPT_PARTS, "output_tokens"})


class AnthropicMessages(ChatFormat):
    name = "messages"
    end_marker = rb'"stop_reason"\s*:\s*"'
    reason_key = b"stop_reason"
    final_event = rb'"message_stop"'
    turns_key = "messages"
    text_part = "text"

    def finish_reason(self, answer: dict[str, Any]) -> str | None:
        """`stop_reason`: on the message, or in a stream's `message_delta`."""
        if answer.get("type") == "message_delta" and isinstance(delta := answer.get("delta"), dict):
            return reason_text(delta.get("stop_reason"))
        reason = answer.get("stop_reason")
        return None if reason is None else reason_text(reason)

    def token_counts(self, usage: dict[str, Any]) -> tuple[object, object] | None:
        if _USAGE_KEYS.isdisjoint(usage):
            return None
        counts = [usage[part] for part in _PROMPT_PARTS if isinstance(usage.get(part), int)]
        return (sum(counts) if counts else None), usage.get("output_tokens")

    def conversation(self, body: dict[str, Any]) -> tuple[list[Turn], list[Turn]] | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            return None
        return [], messages

    def neutral(self, turns: list[Turn]) -> list[Message]:
        return [turn for message in turns for turn in from_anthropic(message) if well_formed(turn)]

    def history_turns(self, history: list[Message], conversation: list[Message]) -> list[Turn]:
        """Anthropic's rules kept: the calls the client's own next message answers may end
        the history with a `tool_use`."""
        return to_anthropic(history, tool_results_in(conversation))

    def in_system_prompt(self, body: dict[str, Any], block: str) -> dict[str, Any] | None:
        """`system` is text, or a list of text blocks (with their `cache_control`)."""
        system = body.get("system")
        if isinstance(system, list):
            return {**body, "system": [*system, {"type": "text", "text": block}]}
        text = appended(system, block)
        return None if text is None else {**body, "system": text}

    def answer_parser(self) -> AnswerParser:
        return MessagesAnswerParser()


class MessagesAnswerParser(AnswerParser):
    __slots__ = ()

    def read_body(self, body: dict[str, Any]) -> None:
        content = body.get("content") or []
        message = next(iter(from_anthropic({"role": "assistant", "content": content})), {})
        self.text = [as_text(message.get("content"))]
        self.tool_calls = dict(enumerate(as_list(message.get("tool_calls"))))
        self.complete = True

    def read_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "content_block_start":
            block = as_object(event.get("content_block"))
            if block.get("type") == "tool_use":
                self.tool_calls[as_index(event.get("index"))] = {
                    "id": block.get("id"),  # checked with the whole answer
                    "type": "function",
                    "function": {"name": block.get("name"), "arguments": ""},
                }
        elif kind == "content_block_delta":
            delta = as_object(event.get("delta"))
            if delta.get("type") == "text_delta":
                self.text.append(as_text(delta.get("text")))
            elif delta.get("type") == "input_json_delta":
                started = self.tool_calls.get(as_index(event.get("index")))
                if started is not None:
                    started["function"]["arguments"] += as_text(delta.get("partial_json"))
        elif kind == "message_stop":
            self.complete = True
