"""Putting a stored conversation back into a request, in its own API's format (the
request's wire adapter shapes the turns).

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

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from memory_proxy.records.messages import TEXT_ROLES, Message, well_formed
from memory_proxy.wire.base import ChatFormat, Turn


@dataclass(frozen=True)
class ContextLimits:
    max_messages: int
    max_tokens: int


class Prepared(NamedTuple):
    """A tuple: one per session request, built for a third of a frozen dataclass's cost."""

    body: dict[str, Any]
    injected: int  # history messages added to the request
    new_turns: list[Message]  # the client's turns to store once answered


def prepare(
    wire: ChatFormat,
    body: dict[str, Any],
    history: list[Message],
    limits: ContextLimits,
    *,
    private_turns: bool = False,
) -> Prepared | None:
    """The request with history injected (a private model's turns only when
    `private_turns`), or None when its shape is not understood. Whether the client resent
    the conversation is judged on the whole history: the client has every turn."""
    split = wire.conversation(body)
    if split is None:
        return None
    system, conversation = split
    shaped = _Shaped()
    if (new_turns := _new_turns_without_history(wire, conversation, history, shaped)) is not None:
        return Prepared(body, 0, new_turns)
    neutral = shaped.messages  # the turns compared with the history, then the rest:
    if shaped.turns < len(conversation):  # none left, most (one new turn, shaped already)
        neutral += wire.neutral(conversation[shaped.turns :])
    injected = wire.history_turns(trim(history, limits, private_turns=private_turns), neutral)
    if not injected:
        return Prepared(body, 0, neutral)
    rewritten = {**body, wire.turns_key: [*system, *injected, *conversation]}
    return Prepared(rewritten, len(injected), neutral)


@dataclass
class _Shaped:
    """The conversation's first `turns` turns in the neutral shape, as comparing them with
    the history shaped them: not shaped again for the request's new turns."""

    messages: list[Message] = field(default_factory=list)
    turns: int = 0


def _new_turns_without_history(
    wire: ChatFormat, conversation: list[Turn], history: list[Message], shaped: _Shaped
) -> list[Message] | None:
    """The turns to store when the request gets no history: it re-sends the stored
    conversation, or carries one of its own (any answer) that differs from it (trimmed,
    compacted, reasoning stripped, an answer edited) — then the turns after its last
    answer are the new ones. None when history is to be injected.

    Agents resend their whole conversation with every request: only the turns needed are
    put in the neutral shape (each turn's shape is its own), not all of them each time."""
    after = _after_history(wire, conversation, history, shaped)
    if after is not None:
        return after
    for index in range(len(conversation) - 1, -1, -1):
        if wire.is_answer(conversation[index]):
            return wire.neutral(conversation[index + 1 :])
    return None


def _after_history(
    wire: ChatFormat, conversation: list[Turn], history: list[Message], shaped: _Shaped
) -> list[Message] | None:
    """The conversation's messages after `history` when it starts with it (as the neutral
    shape says: the same roles and texts), else None. The turns are shaped a few at a time
    (1, 2, 4, ...: a difference at the start costs one turn, a full match about what
    shaping them all at once does), each turn's messages being its own; those shaped are
    kept in `shaped`."""
    if not history:
        return wire.neutral(conversation)
    matched, start, size = 0, 0, 1
    while start < len(conversation):
        messages = wire.neutral(conversation[start : start + size])
        shaped.messages += messages
        shaped.turns = min(start + size, len(conversation))
        for position, message in enumerate(messages):
            stored = history[matched]
            if message["role"] != stored.get("role") or message["content"] != stored.get("content"):
                return None
            matched += 1
            if matched == len(history):
                rest = wire.neutral(conversation[start + size :])
                return messages[position + 1 :] + rest
        start, size = start + size, size * 2
    return None  # fewer messages than the history


def trim(
    history: list[Message], limits: ContextLimits, *, private_turns: bool = True
) -> list[Message]:
    """The newest well-formed messages within both budgets, not opening on an orphaned
    tool result; a private model's (marked `private`) only with `private_turns`, skipped
    as they come rather than filtered out first. (Stores written before messages were
    checked may hold ill-formed ones.)"""
    kept: list[Message] = []
    tokens = 0
    max_messages, max_tokens = limits.max_messages, limits.max_tokens
    for message in reversed(history):
        content, role = message.get("content"), message.get("role")
        if len(message) == 2 and type(content) is type(role) is str and role in TEXT_ROLES:
            cost = len(content) // 4 + 4  # the usual {"role", "content"}, checked at once
        elif well_formed(message) and (private_turns or not message.get("private")):
            cost = approximate_tokens(message)
        else:
            continue
        if len(kept) >= max_messages or tokens + cost > max_tokens:
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
