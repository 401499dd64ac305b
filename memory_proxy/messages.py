"""The neutral message shape every store keeps, whatever API format the client spoke:
OpenAI-shaped `{"role", "content"}` with text content, plus tool calls. Imported by every
layer, so it imports nothing of ours.

Only well-formed messages are stored or injected: a client's odd message (a role of `1`,
a text block whose text is null) is passed on to LiteLLM as sent, but never remembered,
so it cannot poison every later request of its session.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]

ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_OPTIONAL_TEXT_FIELDS = ("tool_call_id", "name")


def text_of(content: Any) -> str | None:
    """The text of a message's content: a string, or the text parts of a list of blocks
    (OpenAI `text`, Anthropic `text`, Responses `input_text` / `output_text` all carry
    a "text" field). None when it is neither: no string, or a block that is not an object
    with a string type and, if it has one, a string text."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = []
    for block in content:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return None
        if "text" in block:
            if not isinstance(text := block["text"], str):
                return None
            texts.append(text)
    return "".join(texts)


def well_formed(message: Message) -> bool:
    """A known role, text content, well-formed tool calls and string ids: safe to store
    and to put back into any later request."""
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
