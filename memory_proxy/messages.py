"""The neutral message shape every store keeps, whatever API format the client spoke:
OpenAI-shaped `{"role", "content"}` with text content, plus tool calls. Imported by every
layer, so it imports nothing of ours."""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


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


def mark_partial(message: Message, partial: bool) -> Message:
    """An answer from a stream that was cut short is kept, and marked so."""
    if partial and message["role"] == "assistant":
        return {**message, "partial": True}
    return message
