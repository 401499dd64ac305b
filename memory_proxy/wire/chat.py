"""OpenAI chat completions (`/v1/chat/completions`), the neutral shape's own: turns are
`messages`, the system prompt is their leading `system` / `developer` messages, an answer
is `choices[0].message` (a stream: `choices[].delta` chunks, tool calls in fragments).
Also the legacy text completions (`/v1/completions`), which memory does not read but
whose streams, like chat's, carry token counts only when asked.
"""

from __future__ import annotations

import itertools
from typing import Any

from memory_proxy.records.messages import (
    TEXT_ROLES,
    Message,
    RawMessage,
    stored_text,
    well_formed,
)
from memory_proxy.wire.base import (
    AnswerParser,
    ChatFormat,
    Turn,
    WireFormat,
    as_index,
    as_list,
    as_object,
    as_text,
    reason_text,
)

SYSTEM_ROLES = ("system", "developer")  # a tuple: a role may be any JSON, even unhashable
_OPENAI_FIELDS = ("tool_calls", "tool_call_id", "name")
_MEMORY_MARKS = ("partial", "private")  # what memory notes on a message, not the client's
_DICTS = itertools.repeat(dict)  # isinstance's second argument, for map: no generator


class TextCompletions(WireFormat):
    """OpenAI's answers, as both its completions APIs give them; alone, the legacy text
    completions, which accounting reads (a prompt: no conversation for memory)."""

    name = "completions"
    end_marker = rb'"finish_reason"\s*:\s*"'
    reason_key = b"finish_reason"

    def ask_stream_usage(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """`stream_options.include_usage`, only when the client streams and did not decide
        for itself: an explicit `include_usage: false` is respected."""
        if payload.get("stream") is not True:
            return None
        options = payload.get("stream_options")
        if options is None:
            options = {}
        if not isinstance(options, dict) or "include_usage" in options:
            return None
        return {**payload, "stream_options": {**options, "include_usage": True}}

    def finish_reason(self, answer: dict[str, Any]) -> str | None:
        choices = answer.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return reason_text(choices[0].get("finish_reason"))
        return None

    def token_counts(self, usage: dict[str, Any]) -> tuple[object, object] | None:
        if "prompt_tokens" in usage or "completion_tokens" in usage:
            return usage.get("prompt_tokens"), usage.get("completion_tokens")
        return None


class ChatCompletions(TextCompletions, ChatFormat):
    name = "chat"
    turns_key = "messages"
    text_part = "text"

    def conversation(self, body: dict[str, Any]) -> tuple[list[Turn], list[Turn]] | None:
        messages = body.get("messages")
        if not isinstance(messages, list) or not all(map(isinstance, messages, _DICTS)):
            return None
        leading = _leading_system(messages)
        return messages[:leading], messages[leading:]

    def neutral(self, turns: list[Turn]) -> list[Message]:
        neutral: list[Message] = []
        for turn in turns:
            role, content = turn.get("role"), turn.get("content")
            if len(turn) == 2 and type(role) is type(content) is str and role in TEXT_ROLES:
                # A role and a text alone (most): well-formed as it is, shaped at once
                # (scripts/bench_session_steps' prepare, one turn: ~9k instructions less).
                neutral.append({"role": role, "content": content})
            elif well_formed(message := _from_openai(turn)):
                neutral.append(message)
        return neutral

    def history_turns(self, history: list[Message], conversation: list[Message]) -> list[Turn]:
        # A message of a role and a text alone (most) carries no mark: passed as it is
        # (no `cast` called for each: it is a function at run time).
        turns: list[Any] = [
            message
            if len(message) == 2
            else {key: value for key, value in message.items() if key not in _MEMORY_MARKS}
            for message in history
        ]
        return turns

    def in_system_prompt(self, body: dict[str, Any], block: str) -> dict[str, Any] | None:
        """A system message of its own, after the client's."""
        messages = body.get("messages")
        if not isinstance(messages, list):
            return None
        leading = _leading_system(messages)
        system = {"role": "system", "content": block}
        return {**body, "messages": [*messages[:leading], system, *messages[leading:]]}

    def answer_parser(self) -> AnswerParser:
        return ChatAnswerParser()


class ChatAnswerParser(AnswerParser):
    __slots__ = ()

    def read_body(self, body: dict[str, Any]) -> None:
        # as_list / as_object / as_text inlined: one answer each request, on the event loop
        choices = body.get("choices")
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        content = calls = None
        if isinstance(message, dict):
            content, calls = message.get("content"), message.get("tool_calls")
        self.text = [content if isinstance(content, str) else ""]
        self.tool_calls = dict(enumerate(calls)) if isinstance(calls, list) else {}
        self.complete = True

    def read_event(self, event: dict[str, Any]) -> None:
        for choice in map(as_object, as_list(event.get("choices"))):
            delta = as_object(choice.get("delta"))
            if text := as_text(delta.get("content")):
                self.text.append(text)
            for call in map(as_object, as_list(delta.get("tool_calls"))):
                self._merge_tool_call(call)
            if choice.get("finish_reason"):
                self.complete = True

    def _merge_tool_call(self, call: dict[str, Any]) -> None:
        """OpenAI streams a tool call as fragments sharing an index."""
        entry = self.tool_calls.setdefault(
            as_index(call.get("index")),
            {"type": "function", "function": {"name": "", "arguments": ""}},
        )
        if call.get("id"):
            entry["id"] = call["id"]
        function = as_object(call.get("function"))
        entry["function"]["name"] += as_text(function.get("name"))
        entry["function"]["arguments"] += as_text(function.get("arguments"))


def _leading_system(messages: list[Any]) -> int:
    """How many system (or developer) messages open the conversation."""
    leading = 0
    while (
        leading < len(messages)
        and isinstance(messages[leading], dict)
        and messages[leading].get("role") in SYSTEM_ROLES
    ):
        leading += 1
    return leading


def _from_openai(message: dict[str, Any]) -> RawMessage:
    """Possibly ill-formed: the caller checks. An assistant's content may be null (it
    only calls tools)."""
    role, content = message.get("role"), message.get("content")
    neutral: RawMessage = {
        "role": role,
        "content": "" if content is None and role == "assistant" else stored_text(content),
    }
    neutral.update({key: message[key] for key in _OPENAI_FIELDS if key in message})
    return neutral
