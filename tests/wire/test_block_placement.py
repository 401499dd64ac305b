"""Where a recalled block goes in each wire format, request by request: the opening of the
latest user turn (text parts, cached parts, tool results), nothing for a turn that is not
the user's, and the end of the system prompt after the client's own."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES

PLACED = "<recalled-memories-0123456789ab>\n…\n</recalled-memories-0123456789ab>"
# Each format's own shapes, placed as its clients send them.
CACHED = {"type": "ephemeral"}


def part(value: str, kind: str = "text", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "text": value, **extra}


def user(content: Any, **extra: Any) -> dict[str, Any]:
    return {"role": "user", "content": content, **extra}


TOOL_RESULT = {"type": "tool_result", "tool_use_id": "t"}
SYSTEM = {"role": "system", "content": "S"}


@pytest.mark.parametrize(
    ("wire", "body", "expected"),
    [
        (
            CHAT,
            {"messages": [SYSTEM, user("Q")]},
            {"messages": [SYSTEM, user(f"{PLACED}\n\nQ")]},
        ),
        (
            CHAT,
            {"messages": [user([part("Q")])]},
            {"messages": [user([part(PLACED), part("Q")])]},
        ),
        (
            MESSAGES,
            {"messages": [user([TOOL_RESULT, part("Q", cache_control=CACHED)])]},
            {"messages": [user([TOOL_RESULT, part(PLACED), part("Q", cache_control=CACHED)])]},
        ),
        (RESPONSES, {"input": "Q"}, {"input": f"{PLACED}\n\nQ"}),
        (
            RESPONSES,
            {"input": [user([part("Q", "input_text")], type="message")]},
            {
                "input": [
                    user([part(PLACED, "input_text"), part("Q", "input_text")], type="message")
                ]
            },
        ),
    ],
    ids=["openai-string", "openai-parts", "anthropic-blocks", "responses-text", "responses-items"],
)
def test_the_block_opens_the_user_turn_in_each_format(
    wire: ChatFormat, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    original = copy.deepcopy(body)
    last = len(body.get("messages") or body.get("input") or "x") - 1
    assert wire.in_user_turn(body, last, PLACED) == expected
    assert body == original  # the client's request is copied, never changed


def test_a_turn_that_is_not_a_user_message_gets_nothing() -> None:
    body = {"messages": [{"role": "assistant", "content": "A"}]}
    assert CHAT.in_user_turn(body, 0, PLACED) is None
    assert CHAT.in_user_turn(body, 5, PLACED) is None
    assert CHAT.in_user_turn({"messages": [{"role": "user"}]}, 0, PLACED) is None


def test_system_placement_in_each_format_keeps_the_clients_system_prompt_first() -> None:
    system = [{"type": "text", "text": "S", "cache_control": CACHED}]
    anthropic = MESSAGES.in_system_prompt({"system": system, "messages": []}, PLACED)
    assert anthropic == {"system": [*system, {"type": "text", "text": PLACED}], "messages": []}
    assert MESSAGES.in_system_prompt({"system": "S"}, PLACED) == {"system": f"S\n\n{PLACED}"}
    assert MESSAGES.in_system_prompt({}, PLACED) == {"system": PLACED}
    openai = CHAT.in_system_prompt(
        {"messages": [{"role": "system", "content": "S"}, {"role": "user"}]}, PLACED
    )
    assert openai == {
        "messages": [
            {"role": "system", "content": "S"},
            {"role": "system", "content": PLACED},
            {"role": "user"},
        ]
    }
    responses = RESPONSES.in_system_prompt({"instructions": "I", "input": "Q"}, PLACED)
    assert responses == {"instructions": f"I\n\n{PLACED}", "input": "Q"}
