"""The neutral message shape every store keeps, whatever API format the client spoke:
OpenAI-shaped `{"role", "content"}` with text content, plus tool calls. Imported by every
layer, so it imports nothing of ours.

Only well-formed messages are stored or injected: a client's odd message (a role of `1`,
a text block whose text is null) is passed on to LiteLLM as sent, but never remembered,
so it cannot poison every later request of its session.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict, TypeGuard


class ToolFunction(TypedDict):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(TypedDict):
    id: str
    type: NotRequired[Literal["function"]]
    function: ToolFunction


class Message(TypedDict):
    """A stored message. A plain dict at runtime: a client's JSON becomes one only by
    passing `well_formed`."""

    role: str
    content: str
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    name: NotRequired[str]
    partial: NotRequired[bool]  # the answer of a stream cut short
    private: NotRequired[bool]  # of an exchange with a private model: not for hosted ones


# A message from a client or an answer, any shape: a Message once `well_formed` says so.
RawMessage = dict[str, Any]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
TEXT_ROLES = ROLES - {"tool"}  # a message of a role and a text alone (a tool result names its call)
_OPTIONAL_TEXT_FIELDS = ("tool_call_id", "name")


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of blocks
    (OpenAI `text`, Anthropic `text`, Responses `input_text` / `output_text` all carry
    a "text" field); a part whose text is not a string is skipped, never a crash."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            text
            for part in content
            if isinstance(part, dict) and isinstance(text := part.get("text"), str)
        )
    return ""


def stored_text(content: Any) -> str | None:
    """The text memory keeps of a content; None when the content is neither a string nor
    a list of proper blocks (objects with a string type and, if they have one, a string
    text): the message is then not remembered."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(map(_proper_block, content)):
        return text_of(content)
    return None


def _proper_block(block: Any) -> bool:
    return (
        isinstance(block, dict)
        and isinstance(block.get("type"), str)
        and isinstance(block.get("text", ""), str)
    )


def well_formed(message: Mapping[str, Any]) -> TypeGuard[Message]:
    """A known role, text content, well-formed tool calls and string ids: safe to store
    and to put back into any later request. The boundary between a client's JSON (any
    shape) and a `Message`."""
    role = message.get("role")
    if not (isinstance(role, str) and role in ROLES and isinstance(message.get("content"), str)):
        return False
    if len(message) == 2:  # the usual {"role", "content"}; a tool result must name its call
        return role != "tool"
    for key in _OPTIONAL_TEXT_FIELDS:
        if key in message and not isinstance(message[key], str):
            return False
    if role == "tool" and "tool_call_id" not in message:
        return False
    calls = message.get("tool_calls")
    return calls is None or (isinstance(calls, list) and all(map(well_formed_tool_call, calls)))


def well_formed_tool_call(call: Any) -> bool:
    """`{"id": str, "type": "function", "function": {"name": str, "arguments": str}}`."""
    if not isinstance(call, dict) or not isinstance(call.get("id"), str):
        return False
    if call.get("type", "function") != "function":
        return False
    function = call.get("function")
    return (
        isinstance(function, dict)
        and isinstance(function.get("name"), str)
        and isinstance(function.get("arguments"), str)
    )


def mark_partial(message: Message, partial: bool) -> Message:
    """An answer from a stream that was cut short is kept, and marked so."""
    if partial and message["role"] == "assistant":
        return {**message, "partial": True}
    return message
