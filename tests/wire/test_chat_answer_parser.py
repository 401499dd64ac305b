"""The chat adapter's parser of whole JSON answers (wire/chat.py), against its previous
form (its helper calls inlined for the hot path, issue 19)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.messages import Message, well_formed
from memory_proxy.wire.base import as_list, as_object, as_text
from memory_proxy.wire.chat import ChatAnswerParser
from tests.wire.answer_support import json_values


class ChatAnswerParserBefore(ChatAnswerParser):
    """The chat parser's `read_body` and `message` before they were inlined: the reference."""

    __slots__ = ()

    def read_body(self, body: dict[str, Any]) -> None:
        choices = as_list(body.get("choices"))
        message = as_object(as_object(choices[0]).get("message")) if choices else {}
        self.text = [as_text(message.get("content"))]
        self.tool_calls = dict(enumerate(as_list(message.get("tool_calls"))))
        self.complete = True

    def message(self) -> Message | None:
        text = "".join(self.text)
        if not text.strip() and not self.tool_calls:
            return None
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        return message if well_formed(message) else None


chat_messages = st.fixed_dictionaries(
    {},
    optional={
        "role": st.just("assistant") | json_values,
        "content": st.text(max_size=8) | json_values,
        "tool_calls": st.lists(
            st.fixed_dictionaries(
                {"id": st.just("c1"), "function": st.just({"name": "f", "arguments": "{}"})}
            )
            | json_values,
            max_size=2,
        )
        | json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "choices": st.lists(st.fixed_dictionaries({"message": chat_messages}) | json_values)
            | json_values
        },
    )
)
def test_a_chat_answer_s_message_is_read_as_before(body: dict[str, Any]) -> None:
    new, old = ChatAnswerParser(), ChatAnswerParserBefore()
    new.read_body(body)
    old.read_body(body)
    assert (new.message(), new.complete) == (old.message(), old.complete)
