"""Putting a stored conversation back into a request, per API format.

History goes between the client's system prompt and its messages, trimmed from the
oldest to the message and token budgets, never starting with a tool result whose call was
trimmed away. A request that carries a conversation of its own (any assistant turn: IDEs
and agents re-send it all) gets nothing injected, even when its past differs from the
stored one; only its new turns are stored. Only well-formed messages are stored and
injected (messages.well_formed); the client's own messages are passed on as sent.

A private model's turns (marked `private`) go only into requests to private models: any
other request gets the session's other turns, as if those had never been said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memory_proxy.memory.anthropic_format import from_anthropic, to_anthropic, tool_results_in
from memory_proxy.records.messages import ApiKind, Message, RawMessage, stored_text, well_formed

# Request path -> the API format spoken there.
CHAT_APIS: dict[str, ApiKind] = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/responses": "responses",
}
_SYSTEM_ROLES = ("system", "developer")  # a tuple: a role may be any JSON, even unhashable
_OPENAI_FIELDS = ("tool_calls", "tool_call_id", "name")
_MEMORY_MARKS = ("partial", "private")  # what memory notes on a message, not the client's


@dataclass(frozen=True)
class ContextLimits:
    max_messages: int
    max_tokens: int


@dataclass(frozen=True)
class Prepared:
    body: dict[str, Any]
    injected: int  # history messages added to the request
    new_turns: list[Message]  # the client's turns to store once answered


def prepare(
    api: ApiKind,
    body: dict[str, Any],
    history: list[Message],
    limits: ContextLimits,
    *,
    private_turns: bool = False,
) -> Prepared | None:
    """The request with history injected (a private model's turns only when
    `private_turns`), or None when its shape is not understood. Whether the client resent
    the conversation is judged on the whole history: the client has every turn."""
    injectable = history if private_turns else [m for m in history if not m.get("private")]
    if api == "responses":
        return _prepare_responses(body, history, injectable, limits)
    messages = body.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None
    if api == "openai":
        leading = 0
        while leading < len(messages) and messages[leading].get("role") in _SYSTEM_ROLES:
            leading += 1
        system, conversation = messages[:leading], messages[leading:]
    else:
        system, conversation = [], messages
    neutral = _neutral(api, conversation)
    if (new_turns := _new_turns_without_history(api, conversation, neutral, history)) is not None:
        return Prepared(body, 0, new_turns)
    kept = trim(injectable, limits)
    if api == "anthropic":
        injected_messages = to_anthropic(kept, tool_results_in(neutral))
    else:
        injected_messages = [_to_openai(m) for m in kept]
    if not injected_messages:
        return Prepared(body, 0, neutral)
    rewritten = {**body, "messages": [*system, *injected_messages, *conversation]}
    return Prepared(rewritten, len(injected_messages), neutral)


def _prepare_responses(
    body: dict[str, Any], history: list[Message], injectable: list[Message], limits: ContextLimits
) -> Prepared | None:
    """OpenAI Responses: `input` is a string or a list of items; `instructions` is the
    system prompt. A request chained with `previous_response_id` already has its context."""
    if body.get("previous_response_id"):
        return None
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return None
    neutral = _neutral("responses", items)
    if (new_turns := _new_turns_without_history("responses", items, neutral, history)) is not None:
        return Prepared(body, 0, new_turns)
    kept = [
        {"role": m["role"], "content": m["content"]}
        for m in trim(injectable, limits)
        if m["role"] in ("user", "assistant") and m["content"]
    ]
    if not kept:
        return Prepared(body, 0, neutral)
    return Prepared({**body, "input": [*kept, *items]}, len(kept), neutral)


def _neutral(api: ApiKind, messages: list[dict[str, Any]]) -> list[Message]:
    """The client's messages in the neutral shape, the ill-formed left out. Responses
    items without a known role (function calls, reasoning) are not remembered."""
    converted: list[RawMessage]
    if api == "openai":
        converted = [_from_openai(message) for message in messages]
    elif api == "anthropic":
        converted = [turn for message in messages for turn in from_anthropic(message)]
    else:
        converted = [
            {"role": i.get("role"), "content": stored_text(i.get("content"))} for i in messages
        ]
    return [message for message in converted if well_formed(message)]


def _new_turns_without_history(
    api: ApiKind,
    conversation: list[dict[str, Any]],
    neutral: list[Message],
    history: list[Message],
) -> list[Message] | None:
    """The turns to store when the request gets no history: it re-sends the stored
    conversation, or carries one of its own (any assistant turn) that differs from it
    (trimmed, compacted, reasoning stripped, an answer edited) — then the turns after
    its last answer are the new ones. None when history is to be injected."""
    if _starts_with(neutral, history):
        return neutral[len(history) :]
    for index in range(len(conversation) - 1, -1, -1):
        turn = conversation[index]
        if turn.get("role") == "assistant" or turn.get("type") == "function_call":
            return _neutral(api, conversation[index + 1 :])
    return None


def trim(history: list[Message], limits: ContextLimits) -> list[Message]:
    """The newest well-formed messages within both budgets, not opening on an orphaned
    tool result. (Stores written before messages were checked may hold ill-formed ones.)"""
    kept: list[Message] = []
    tokens = 0
    for message in reversed(history):
        if not well_formed(message):
            continue
        cost = approximate_tokens(message)
        if len(kept) >= limits.max_messages or tokens + cost > limits.max_tokens:
            break
        kept.append(message)
        tokens += cost
    kept.reverse()
    while kept and kept[0]["role"] == "tool":
        kept.pop(0)
    return kept


def approximate_tokens(message: Message) -> int:
    """About four characters a token, plus a little for the message's framing."""
    return (
        len(str(message.get("content") or "")) // 4
        + len(str(message.get("tool_calls", ""))) // 4
        + 4
    )


def _starts_with(conversation: list[Message], history: list[Message]) -> bool:
    if len(conversation) < len(history):
        return False
    return all(
        sent["role"] == stored.get("role") and sent["content"] == stored.get("content")
        for sent, stored in zip(conversation, history, strict=False)
    )


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


def _to_openai(message: Message) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in _MEMORY_MARKS}
