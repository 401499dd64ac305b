"""OpenAI Responses (`/v1/responses`, the Codex CLI's): turns are `input` (a string, or a
list of items: messages with `input_text` parts, function calls and their outputs,
reasoning), the system prompt is `instructions`, an answer is its `output` items (a
stream: `response.output_text.delta` events, `response.completed` at its end, with the
whole response and its usage). A request chained with `previous_response_id` already has
its context: history is not merged into it.
"""

from __future__ import annotations

from typing import Any

from memory_proxy.records.messages import Message, RawMessage, stored_text, well_formed
from memory_proxy.wire.base import (
    AnswerParser,
    ChatFormat,
    Turn,
    appended,
    as_list,
    as_object,
    as_text,
    reason_text,
)

# The events that end a stream, each with the whole response.
_ENDING_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class OpenAIResponses(ChatFormat):
    name = "responses"
    end_marker = rb'"response\.(?:completed|incomplete|failed)"'
    final_event = end_marker
    turns_key = "input"
    text_part = "input_text"

    def finish_reason(self, answer: dict[str, Any]) -> str | None:
        """Its `status`, or why it is incomplete (`incomplete_details.reason`)."""
        if answer.get("type") in _ENDING_EVENTS:
            answer = answer.get("response") or {}
        if answer.get("object") != "response" and "incomplete_details" not in answer:
            return None
        details = answer.get("incomplete_details")
        if answer.get("status") == "incomplete" and isinstance(details, dict):
            return reason_text(details.get("reason")) or "incomplete"
        return reason_text(answer.get("status"))

    def token_counts(self, usage: dict[str, Any]) -> tuple[object, object] | None:
        if "input_tokens" not in usage and "output_tokens" not in usage:
            return None
        return usage.get("input_tokens"), usage.get("output_tokens")

    def turns(self, body: dict[str, Any]) -> list[Any] | None:
        """A string `input` is one user turn."""
        turns = body.get("input")
        if isinstance(turns, str):
            return [{"role": "user", "content": turns}]
        return turns if isinstance(turns, list) else None

    def conversation(self, body: dict[str, Any]) -> tuple[list[Turn], list[Turn]] | None:
        if body.get("previous_response_id"):
            return None
        items = self.turns(body)
        if items is None or not all(isinstance(item, dict) for item in items):
            return None
        return [], items

    def neutral(self, turns: list[Turn]) -> list[Message]:
        """Items without a known role (function calls, reasoning) are not remembered."""
        converted: list[RawMessage] = [
            {"role": item.get("role"), "content": stored_text(item.get("content"))}
            for item in turns
        ]
        return [message for message in converted if well_formed(message)]

    def history_turns(self, history: list[Message], conversation: list[Message]) -> list[Turn]:
        """Text turns only: a stored tool call has no Responses item here."""
        return [
            {"role": message["role"], "content": message["content"]}
            for message in history
            if message["role"] in ("user", "assistant") and message["content"]
        ]

    def user_text(self, turn: Any) -> str:
        """Only message items (`type` absent or `message`) hold what the human wrote."""
        if isinstance(turn, dict) and turn.get("type", "message") != "message":
            return ""
        return ChatFormat.user_text(self, turn)

    def in_text_turns(self, body: dict[str, Any], index: int, block: str) -> dict[str, Any] | None:
        """A string `input` is the one user turn."""
        return {**body, "input": f"{block}\n\n{body['input']}"} if index == 0 else None

    def in_system_prompt(self, body: dict[str, Any], block: str) -> dict[str, Any] | None:
        text = appended(body.get("instructions"), block)
        return None if text is None else {**body, "instructions": text}

    def answer_parser(self) -> AnswerParser:
        return ResponsesAnswerParser()


class ResponsesAnswerParser(AnswerParser):
    __slots__ = ()

    def read_body(self, body: dict[str, Any]) -> None:
        for item in map(as_object, as_list(body.get("output"))):
            if item.get("type") == "message":
                parts = map(as_object, as_list(item.get("content")))
                self.text += [
                    as_text(part.get("text")) for part in parts if part.get("type") == "output_text"
                ]
        self.complete = True

    def read_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            self.text.append(as_text(event.get("delta")))
        elif kind == "response.completed":
            self.complete = True
