"""What an exchange keeps of a message (ConversationMemory._kept): an ASCII text without
"<" is passed on without searching it for recalled blocks or private text, with the same
result as the searches (the reference below is the code as it was before that)."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from memory_proxy.memory.conversation import ConversationMemory, _without_recalled
from memory_proxy.memory.private_text import without_private
from memory_proxy.records.messages import Message


def _kept_searching_always(message: Message, private: bool) -> Message:
    """ConversationMemory._kept before the ASCII look: every text searched."""
    message = _without_recalled(message)
    if message["role"] == "user":
        content = message["content"]
        if (kept := without_private(content)) is not content:
            message = {**message, "content": kept}
    if private:
        message = {**message, "private": True}
    return message


PIECES = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="<>/ privateRECALLED-mo\u200b\uff1c\u2039x", max_size=12),
    st.sampled_from(
        [
            "<private>",
            "</private>",
            "< PRIVATE >",
            "<recalled-memories>",
            "</recalled-memories>",
            "<recalled-memories-0a1b2c>",
            "\uff1crecalled-memories\uff1e",  # full-width brackets: no "<" in the text
            "recalled-memories",
            "\n\n",
            "é",
        ]
    ),
)
CONTENTS = st.one_of(st.lists(PIECES, max_size=6).map("".join), st.none())


@settings(max_examples=500)
@given(
    role=st.sampled_from(["user", "assistant", "system", "tool"]),
    content=CONTENTS,
    extra=st.dictionaries(st.sampled_from(["name", "private", "tool_call_id"]), st.text()),
    private=st.booleans(),
)
def test_kept_as_when_every_text_was_searched(
    role: str, content: str | None, extra: dict[str, Any], private: bool
) -> None:
    assume(content is not None or role != "user")  # well-formed: a user's text is a string
    memory = ConversationMemory.__new__(ConversationMemory)
    message = cast(Message, {"role": role, "content": content, **extra})
    original = {**message}
    kept = memory._kept(message, private)
    reference = _kept_searching_always(message, private)
    assert kept == reference
    assert (kept is message) == (reference is message)  # a copy only when changed
    assert message == original  # the client's message itself never changed
