"""OpenAI chat turns in the neutral shape (ChatCompletions.neutral): a turn of a role and
a text alone is shaped at once, with the same result as shaping every turn and checking
it (the reference below is the code as it was before that), for any JSON a client sends."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.messages import Message, well_formed
from memory_proxy.wire.chat import _from_openai
from memory_proxy.wire.registry import CHAT


def _neutral_shaping_all(turns: list[Any]) -> list[Message]:
    return [message for message in map(_from_openai, turns) if well_formed(message)]


class _Text(str):
    """A string of a subclass: shaped the long way."""


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=4,
)
ROLES = st.sampled_from(["user", "assistant", "system", "developer", "tool", "other", ""])
VALUES = st.one_of(ROLES, st.text(max_size=6), st.text(max_size=6).map(_Text), JSON)
KEYS = st.sampled_from(["role", "content", "name", "tool_call_id", "tool_calls", "x"])
TURNS = st.one_of(
    st.fixed_dictionaries({"role": ROLES, "content": st.text(max_size=6)}),
    st.fixed_dictionaries({"role": VALUES, "content": VALUES}),
    st.dictionaries(KEYS, VALUES, max_size=4),
)


@settings(max_examples=500)
@given(turns=st.lists(TURNS, max_size=5))
def test_neutral_as_when_every_turn_was_shaped_and_checked(turns: list[dict[str, Any]]) -> None:
    shaped = CHAT.neutral(turns)
    assert shaped == _neutral_shaping_all(turns)
    assert all(type(message) is dict for message in shaped)
    assert not any(message is turn for message in shaped for turn in turns)  # copies


def test_a_text_turn_is_shaped_as_a_new_dict() -> None:
    turn = {"role": "user", "content": "hi"}
    (shaped,) = CHAT.neutral([turn])
    assert shaped == turn and shaped is not turn
