"""The neutral message helpers every layer uses: whatever JSON a client sent, they answer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.records.messages import stored_text, text_of, well_formed

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def test_text_parts_are_joined_and_other_parts_skipped() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "image"}, {"type": "text", "text": 5}, "b"]
    assert text_of([*parts, {"type": "output_text", "text": "c"}]) == "ac"
    assert text_of("plain") == "plain"
    assert text_of(None) == ""


@given(JSON_VALUES | st.lists(st.dictionaries(st.just("text"), JSON_VALUES)))
def test_any_json_content_gives_text(content: Any) -> None:
    assert isinstance(text_of(content), str)


def test_memory_keeps_the_text_of_proper_content_only() -> None:
    assert stored_text("plain") == "plain"
    assert stored_text([{"type": "text", "text": "a"}, {"type": "image_url"}]) == "a"
    for improper in (None, 5, {"type": "text"}, ["b"], [{"text": "no type"}]):
        assert stored_text(improper) is None
    assert stored_text([{"type": "text", "text": None}]) is None


CALL = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}


def test_well_formed_messages() -> None:
    assert well_formed({"role": "user", "content": "hi"})
    assert well_formed({"role": "assistant", "content": "", "tool_calls": [CALL]})
    assert well_formed({"role": "tool", "content": "42", "tool_call_id": "c1"})
    assert well_formed({"role": "assistant", "content": "cut", "partial": True})
    for ill in (
        {"role": 1, "content": "x"},
        {"role": None, "content": "x"},
        {"role": "robot", "content": "x"},
        {"role": "user", "content": None},
        {"role": "tool", "content": "42"},
        {"role": "user", "content": "x", "name": 3},
        {"role": "assistant", "content": "", "tool_calls": {"id": "c1"}},
        {"role": "assistant", "content": "", "tool_calls": [{**CALL, "id": None}]},
        {"role": "assistant", "content": "", "tool_calls": [{**CALL, "function": {"name": "f"}}]},
    ):
        assert not well_formed(ill), ill


@given(
    st.dictionaries(st.sampled_from(["role", "content", "tool_calls", "tool_call_id"]), JSON_VALUES)
)
def test_any_json_message_is_judged_without_raising(message: dict[str, Any]) -> None:
    assert well_formed(message) in (True, False)
    assert stored_text(message.get("content")) is None or isinstance(
        stored_text(message.get("content")), str
    )
