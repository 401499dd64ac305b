"""Injection shapes a resent conversation's turns only as far as it must (memory/injection.py):
the same body, count and stored turns as shaping every turn first, and an agent's long
conversation whose start differs is not all shaped."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.memory.injection import ContextLimits, approximate_tokens, prepare, trim
from memory_proxy.records.messages import Message, well_formed
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES

LIMITS = ContextLimits(max_messages=20, max_tokens=10_000)


def _prepared_converting_every_turn(
    wire: ChatFormat, body: dict[str, Any], history: list[Message], private_turns: bool = False
) -> tuple[dict[str, Any], int, list[Message]] | None:
    """prepare() as it was: the whole conversation put in the neutral shape first (and
    shaped again for the turns to store), a private model's turns filtered out before
    trimming."""
    split = wire.conversation(body)
    if split is None:
        return None
    system, conversation = split
    neutral = wire.neutral(conversation)
    starts = len(neutral) >= len(history) and all(
        sent["role"] == stored.get("role") and sent["content"] == stored.get("content")
        for sent, stored in zip(neutral, history, strict=False)
    )
    if starts:
        return body, 0, neutral[len(history) :]
    for index in range(len(conversation) - 1, -1, -1):
        if wire.is_answer(conversation[index]):
            return body, 0, wire.neutral(conversation[index + 1 :])
    injectable = history if private_turns else [m for m in history if not m.get("private")]
    injected = wire.history_turns(trim(injectable, LIMITS), neutral)
    if not injected:
        return body, 0, neutral
    return {**body, wire.turns_key: [*system, *injected, *conversation]}, len(injected), neutral


_WORDS = st.sampled_from(["alpha", "beta", "gamma"])


_ANTHROPIC_TURNS = st.one_of(
    st.builds(lambda text: {"role": "user", "content": text}, _WORDS),
    st.builds(lambda text: {"role": "assistant", "content": text}, _WORDS),
    st.builds(  # a tool's result and the human's text: two neutral messages from one turn
        lambda n, text: {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": f"t{n}", "content": "done"},
                {"type": "text", "text": text},
            ],
        },
        st.integers(0, 2),
        _WORDS,
    ),
    st.builds(
        lambda n: {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": f"t{n}", "name": "run", "input": {}}],
        },
        st.integers(0, 2),
    ),
)


@settings(max_examples=300)
@given(
    turns=st.lists(_ANTHROPIC_TURNS, max_size=8),
    cut=st.integers(0, 12),
    changed=st.booleans(),
    extra=st.lists(st.builds(lambda text: {"role": "user", "content": text}, _WORDS), max_size=2),
    private=st.lists(st.booleans(), max_size=12),
    private_turns=st.booleans(),
)
def test_the_turns_are_shaped_only_as_far_as_needed_with_the_same_result(
    turns: list[dict[str, Any]],
    cut: int,
    changed: bool,
    extra: list[Message],
    private: list[bool],
    private_turns: bool,
) -> None:
    """Whatever the conversation and the stored history (a prefix of it, cut anywhere,
    even inside a turn, or not): the same body, count and turns to store as when every
    turn was shaped first, in each API."""
    for wire, key in ((MESSAGES, "messages"), (CHAT, "messages")):
        shaped = cast(list[dict[str, Any]], MESSAGES.neutral(turns))
        conversation = turns if wire is MESSAGES else shaped
        history = [*wire.neutral(conversation)[:cut], *extra]
        if changed and history:
            history[0] = {**history[0], "content": "changed"}
        marks = [*private, *[False] * len(history)][: len(history)]
        history = [
            {**m, "private": True} if mark else m for m, mark in zip(history, marks, strict=True)
        ]
        body = {"model": "m", key: conversation}
        prepared = prepare(wire, body, history, LIMITS, private_turns=private_turns)
        assert prepared is not None
        expected = _prepared_converting_every_turn(wire, body, history, private_turns)
        assert (prepared.body, prepared.injected, prepared.new_turns) == expected


def test_an_agents_long_conversation_is_not_all_shaped_when_its_start_differs() -> None:
    """Claude Code and Codex resend every turn with every request; the session keeps its
    newest messages only (memory.max_session_messages), so the stored history differs from
    the conversation's start at its first message: that one turn is shaped to tell, then
    the turns after the last answer, to be stored."""
    shaped: list[int] = []

    class Counting(type(CHAT)):  # type: ignore[misc]
        def neutral(self, turns: list[Any]) -> list[Message]:
            shaped.append(len(turns))
            return cast(list[Message], super().neutral(turns))

    conversation: list[dict[str, Any]] = [
        {"role": "user" if n % 2 == 0 else "assistant", "content": f"turn {n}"} for n in range(201)
    ]
    history: list[Message] = [{"role": "user", "content": "turn 1 of the kept ones"}]
    prepared = prepare(Counting(), {"model": "m", "messages": conversation}, history, LIMITS)
    assert prepared is not None and prepared.new_turns == [conversation[-1]]
    assert sum(shaped) <= 2  # 202 before: all 201 turns, then the last one again


def _trimmed_checking_each(history: list[Any], limits: ContextLimits) -> list[Any]:
    """trim() as it was: every stored message checked whole and counted."""
    kept: list[Any] = []
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


_STORED = st.dictionaries(
    st.sampled_from(
        ["role", "content", "tool_call_id", "tool_calls", "partial", "name", "private"]
    ),
    st.one_of(
        st.sampled_from(["user", "assistant", "tool", "system", "developer", "robot"]),
        st.text(max_size=40),
        st.none(),
        st.integers(),
        st.lists(st.integers(), max_size=2),
        st.just([{"id": "c", "function": {"name": "run", "arguments": "{}"}}]),
    ),
)


@settings(max_examples=300)
@given(
    history=st.lists(_STORED, max_size=12),
    max_messages=st.integers(1, 6),
    max_tokens=st.integers(1, 40),
    private_turns=st.booleans(),
)
def test_trim_of_any_stored_messages_is_the_checked_one(
    history: list[Any], max_messages: int, max_tokens: int, private_turns: bool
) -> None:
    """Stores written before messages were checked may hold anything: trim's quick path
    for a role and a text keeps and counts exactly what checking each message did, and
    skipping a private model's turns as it goes (for a hosted model) what trimming the
    other turns, filtered out first, did."""
    limits = ContextLimits(max_messages=max_messages, max_tokens=max_tokens)
    others = history if private_turns else [m for m in history if not m.get("private")]
    assert trim(history, limits, private_turns=private_turns) == _trimmed_checking_each(
        others, limits
    )
