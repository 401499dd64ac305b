"""The neutral message helpers every layer uses: whatever JSON a client sent, they answer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.messages import text_of

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
