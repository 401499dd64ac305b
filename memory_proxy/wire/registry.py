"""Which wire format a request path speaks: one adapter per API, looked up by path. A
fourth API is an adapter module and its paths here."""

from __future__ import annotations

from memory_proxy.wire.base import ChatFormat, WireFormat
from memory_proxy.wire.chat import ChatCompletions, TextCompletions
from memory_proxy.wire.messages import AnthropicMessages
from memory_proxy.wire.responses import OpenAIResponses

CHAT = ChatCompletions()
MESSAGES = AnthropicMessages()
RESPONSES = OpenAIResponses()
TEXT_COMPLETIONS = TextCompletions()

# Request path -> the format spoken there.
WIRE_FORMATS: dict[str, WireFormat] = {
    "/v1/chat/completions": CHAT,
    "/chat/completions": CHAT,
    "/v1/messages": MESSAGES,
    "/v1/responses": RESPONSES,
    "/v1/completions": TEXT_COMPLETIONS,
    "/completions": TEXT_COMPLETIONS,
}


_CONVERSATIONS = {path: f for path, f in WIRE_FORMATS.items() if isinstance(f, ChatFormat)}
CHAT_PATHS = frozenset(_CONVERSATIONS)  # the chat APIs, where memory works
# Each chat format by its name: how a kept answer names the format that reads it.
CHAT_FORMATS = {f.name: f for f in _CONVERSATIONS.values()}


def chat_format(path: str) -> ChatFormat | None:
    """The chat API spoken at `path`, for memory; None where there is no conversation."""
    return _CONVERSATIONS.get(path)
