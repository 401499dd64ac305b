from __future__ import annotations

from typing import Any, cast

import pytest

from memory_proxy.memory.injection import ContextLimits, prepare, trim
from memory_proxy.records.messages import Message, ToolCall
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES, RESPONSES

LIMITS = ContextLimits(max_messages=20, max_tokens=10_000)
HISTORY: list[Message] = [
    {"role": "user", "content": "My name is Alice"},
    {"role": "assistant", "content": "Hello Alice"},
]


def test_openai_history_goes_between_system_prompt_and_new_messages() -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "What's my name?"},
        ],
    }
    prepared = prepare(CHAT, body, HISTORY, LIMITS)
    assert prepared is not None
    assert [m["content"] for m in prepared.body["messages"]] == [
        "be brief",
        "My name is Alice",
        "Hello Alice",
        "What's my name?",
    ]
    assert prepared.injected == 2
    assert prepared.new_turns == [{"role": "user", "content": "What's my name?"}]
    assert prepared.body["model"] == "m"
    assert body["messages"][1]["content"] == "What's my name?"  # the original is untouched


def test_a_client_resending_the_full_history_gets_nothing_injected() -> None:
    body = {"messages": [*HISTORY, {"role": "user", "content": "again"}]}
    prepared = prepare(CHAT, body, HISTORY, LIMITS)
    assert prepared is not None
    assert prepared.injected == 0
    assert prepared.body is body
    assert prepared.new_turns == [{"role": "user", "content": "again"}]


def test_content_parts_compare_as_text() -> None:
    parts = [{"type": "text", "text": "My name "}, {"type": "text", "text": "is Alice"}]
    body = {
        "messages": [
            {"role": "user", "content": parts},
            HISTORY[1],
            {"role": "user", "content": "x"},
        ]
    }
    prepared = prepare(CHAT, body, HISTORY, LIMITS)
    assert prepared is not None and prepared.injected == 0


def test_anthropic_history_alternates_and_opens_with_the_user() -> None:
    history: list[Message] = [
        {"role": "assistant", "content": "orphan answer"},
        {"role": "user", "content": "a"},
        {"role": "user", "content": "b"},
        {"role": "assistant", "content": "c"},
        {"role": "tool", "content": "result", "tool_call_id": "1"},
        {"role": "user", "content": "dangling"},
    ]
    body = {
        "system": "sys",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]}],
    }
    prepared = prepare(MESSAGES, body, history, LIMITS)
    assert prepared is not None
    assert prepared.body["system"] == "sys"
    assert prepared.body["messages"] == [
        {"role": "user", "content": "a\n\nb"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": [{"type": "text", "text": "q"}]},
    ]
    assert prepared.new_turns == [{"role": "user", "content": "q"}]


def test_trim_keeps_the_newest_within_message_and_token_budgets() -> None:
    history: list[Message] = [{"role": "user", "content": str(i) * 40} for i in range(10)]
    assert [m["content"][0] for m in trim(history, ContextLimits(3, 10_000))] == ["7", "8", "9"]
    # each message costs 40 // 4 + 4 = 14 tokens
    assert len(trim(history, ContextLimits(20, 30))) == 2


def test_trim_never_opens_on_a_tool_result_without_its_call() -> None:
    history: list[Message] = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [{**CALL, "id": "1"}]},
        {"role": "tool", "content": "sunny", "tool_call_id": "1"},
        {"role": "assistant", "content": "It is sunny"},
    ]
    assert trim(history, ContextLimits(2, 10_000)) == [history[3]]
    assert trim(history, ContextLimits(3, 10_000)) == history[1:]


def test_bodies_without_a_message_list_are_left_alone() -> None:
    assert prepare(CHAT, {"prompt": "x"}, HISTORY, LIMITS) is None
    assert prepare(CHAT, {"messages": ["not a dict"]}, HISTORY, LIMITS) is None


def test_responses_input_string_gets_history_before_it() -> None:
    body = {"model": "m", "instructions": "be brief", "input": "What's my name?"}
    prepared = prepare(RESPONSES, body, HISTORY, LIMITS)
    assert prepared is not None
    assert prepared.body["input"] == [
        {"role": "user", "content": "My name is Alice"},
        {"role": "assistant", "content": "Hello Alice"},
        {"role": "user", "content": "What's my name?"},
    ]
    assert prepared.body["instructions"] == "be brief"
    assert prepared.new_turns == [{"role": "user", "content": "What's my name?"}]


def test_responses_items_with_the_full_history_and_chained_requests_are_left_alone() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "My name is Alice"}]},
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Hello Alice"}],
        },
        {"role": "user", "content": "next"},
    ]
    prepared = prepare(RESPONSES, {"input": items}, HISTORY, LIMITS)
    assert prepared is not None and prepared.injected == 0
    assert prepared.new_turns == [{"role": "user", "content": "next"}]
    chained = {"input": "more", "previous_response_id": "resp_1"}
    assert prepare(RESPONSES, chained, HISTORY, LIMITS) is None


CALL: ToolCall = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "grep", "arguments": '{"q": "x"}'},
}
TOOL_USE = {"type": "tool_use", "id": "toolu_1", "name": "grep", "input": {"q": "x"}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "found"}


def ask(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def test_anthropic_tool_use_is_stored_and_injected_in_pairs() -> None:
    first = {
        "messages": [
            {"role": "user", "content": "find x"},
            {"role": "assistant", "content": [{"type": "text", "text": "looking"}, TOOL_USE]},
            {"role": "user", "content": [TOOL_RESULT]},
        ]
    }
    stored = prepare(MESSAGES, first, [], LIMITS)
    assert stored is not None
    assert stored.new_turns == [
        {"role": "user", "content": "find x"},
        {"role": "assistant", "content": "looking", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "found"},
    ]
    history: list[Message] = [*stored.new_turns, {"role": "assistant", "content": "x is in a.py"}]
    later = prepare(
        MESSAGES, {"messages": [{"role": "user", "content": "and y?"}]}, history, LIMITS
    )
    assert later is not None
    assert later.body["messages"] == [
        {"role": "user", "content": "find x"},
        {"role": "assistant", "content": [{"type": "text", "text": "looking"}, TOOL_USE]},
        {"role": "user", "content": [TOOL_RESULT]},
        {"role": "assistant", "content": "x is in a.py"},
        {"role": "user", "content": "and y?"},
    ]
    # A client re-sending all of it gets nothing added.
    again = {
        "messages": [
            *first["messages"],
            later.body["messages"][3],
            {"role": "user", "content": "z"},
        ]
    }
    resent = prepare(MESSAGES, again, history, LIMITS)
    assert resent is not None and resent.injected == 0


def test_calls_and_results_without_their_partner_are_left_out() -> None:
    history: list[Message] = [
        {"role": "tool", "tool_call_id": "gone", "content": "orphan result"},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},  # never answered
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2", "tool_calls": [CALL]},  # answered next
    ]
    plain = prepare(MESSAGES, ask("q3"), history, LIMITS)
    assert plain is not None
    assert plain.body["messages"] == [
        {"role": "user", "content": "q1\n\nq2"},
        {"role": "assistant", "content": "a2"},
        {"role": "user", "content": "q3"},
    ]
    answering = {"messages": [{"role": "user", "content": [TOOL_RESULT]}]}
    answered = prepare(MESSAGES, answering, history, LIMITS)
    assert answered is not None
    assert answered.body["messages"][-2:] == [
        {"role": "assistant", "content": [{"type": "text", "text": "a2"}, TOOL_USE]},
        {"role": "user", "content": [TOOL_RESULT]},
    ]


def test_openai_tool_history_goes_into_an_anthropic_request() -> None:
    history: list[Message] = [
        {"role": "user", "content": "find x"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "found"},
        {"role": "assistant", "content": "x is in a.py"},
    ]
    prepared = prepare(MESSAGES, {"messages": [{"role": "user", "content": "ok"}]}, history, LIMITS)
    assert prepared is not None
    assert prepared.body["messages"][1] == {"role": "assistant", "content": [TOOL_USE]}
    assert prepared.body["messages"][2] == {"role": "user", "content": [TOOL_RESULT]}


ODD_OPENAI = [
    {"role": {"not": "a role"}, "content": "x"},  # unhashable: it crashed the system split
    {"role": 1, "content": "x"},
    {"role": None, "content": "x"},
    {"role": "user", "content": [{"type": "text", "text": None}]},
    {"role": "user", "content": 5},
    {"role": "user", "content": ["not a block"]},
    {"role": "assistant", "content": "x", "tool_calls": [{"id": 1}]},
    {"role": "assistant", "content": "x", "tool_calls": "not a list"},
    {"role": "tool", "content": "result"},  # answers no call
    {"role": "tool", "content": "result", "tool_call_id": ["1"]},
]
ODD_ANTHROPIC = [
    {"role": 1, "content": "x"},
    {"role": "system", "content": "x"},
    {"role": "user", "content": [{"type": "text", "text": None}]},
    {"role": "user", "content": [{"type": {"a": 1}, "text": "x"}]},
    {"role": "user", "content": {"type": "text", "text": "x"}},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": {"a": 1}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 7}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": ["t"], "name": "f"}]},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": [1]}]},
]
ODD_RESPONSES = [
    {"role": {"a": 1}, "content": "x"},
    {"role": "user", "content": [{"type": "input_text", "text": None}]},
    {"role": "user", "content": None},
    {"type": "function_call", "call_id": {"a": 1}},
]


@pytest.mark.parametrize(
    ("wire", "odd"),
    [(CHAT, m) for m in ODD_OPENAI]
    + [(MESSAGES, m) for m in ODD_ANTHROPIC]
    + [(RESPONSES, m) for m in ODD_RESPONSES],
)
def test_ill_formed_messages_are_passed_on_but_never_stored(
    wire: ChatFormat, odd: dict[str, object]
) -> None:
    key = wire.turns_key
    body = {key: [odd, {"role": "user", "content": "next"}]}
    prepared = prepare(wire, body, HISTORY, LIMITS)
    assert prepared is not None
    assert prepared.new_turns == [{"role": "user", "content": "next"}]
    assert prepared.body[key][-2:] == body[key]  # the client's own messages, as sent
    carries_history = odd.get("role") == "assistant" or odd.get("type") == "function_call"
    assert prepared.injected == (0 if carries_history else 2)  # else history still comes


def test_ill_formed_stored_messages_are_never_injected() -> None:
    # A store written before messages were checked: what it returns is not what it claims.
    ill_formed = [{"role": 1, "content": "x"}, {"role": None, "content": "y"}]
    poisoned = [*cast("list[Message]", ill_formed), *HISTORY]
    for wire in (CHAT, MESSAGES, RESPONSES):
        key = wire.turns_key
        prepared = prepare(wire, {key: [{"role": "user", "content": "q"}]}, poisoned, LIMITS)
        assert prepared is not None
        assert [m["content"] for m in prepared.body[key]] == [
            "My name is Alice",
            "Hello Alice",
            "q",
        ]


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES])
def test_a_client_carrying_its_own_differing_history_gets_none_injected(wire: ChatFormat) -> None:
    """It trimmed, compacted, stripped reasoning or edited an answer: its history stands,
    and only its turns after its last answer are new."""
    key = wire.turns_key
    own = [
        {"role": "user", "content": "My name is Alice"},
        {"role": "assistant", "content": "Hello Alice (edited)"},
        {"role": "user", "content": "What's my name?"},
    ]
    body = {key: own}
    prepared = prepare(wire, body, HISTORY, LIMITS)
    assert prepared is not None
    assert prepared.injected == 0
    assert prepared.body is body
    assert prepared.new_turns == [own[2]]


def test_a_responses_function_call_is_history_the_client_carries() -> None:
    items = [
        {"role": "user", "content": "list files"},
        {"type": "function_call", "call_id": "c1", "name": "ls", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "a.py"},
    ]
    prepared = prepare(RESPONSES, {"input": items}, HISTORY, LIMITS)
    assert prepared is not None and prepared.injected == 0


# A session that went hosted, then private (a local model), then hosted again.
SWITCHED: list[Message] = [
    {"role": "user", "content": "hosted question one"},
    {"role": "assistant", "content": "hosted answer one"},
    {"role": "user", "content": "the vault code is 4471", "private": True},
    {"role": "assistant", "content": "noted, 4471", "private": True, "partial": True},
    {"role": "user", "content": "hosted question two"},
    {"role": "assistant", "content": "hosted answer two"},
]
HOSTED_TURNS = [m["content"] for m in SWITCHED if not m.get("private")]


def asked(wire: ChatFormat, text: str) -> dict[str, Any]:
    if wire is RESPONSES:
        return {"input": text}
    return {"messages": [{"role": "user", "content": text}]}


def sent_texts(wire: ChatFormat, body: dict[str, Any]) -> list[str]:
    turns = body[wire.turns_key]
    return [
        turn["content"] if isinstance(turn["content"], str) else turn["content"][0]["text"]
        for turn in turns
    ]


@pytest.mark.parametrize("wire", [CHAT, MESSAGES, RESPONSES])
@pytest.mark.parametrize("private_turns", [False, True])
def test_a_private_models_turns_are_injected_into_private_requests_only(
    wire: ChatFormat, private_turns: bool
) -> None:
    prepared = prepare(wire, asked(wire, "next"), SWITCHED, LIMITS, private_turns=private_turns)
    assert prepared is not None
    expected = [m["content"] for m in SWITCHED] if private_turns else HOSTED_TURNS
    assert sent_texts(wire, prepared.body) == [*expected, "next"]
    assert "private" not in str(prepared.body) and "partial" not in str(prepared.body)


def test_a_client_resending_private_turns_to_a_hosted_model_stores_only_its_new_turn() -> None:
    """The client keeps the whole conversation and sends it (its own choice): nothing is
    injected, and the private turns are not stored again, as the hosted model's."""
    resent = [{k: v for k, v in m.items() if k in ("role", "content")} for m in SWITCHED]
    body = {"messages": [*resent, {"role": "user", "content": "next"}]}
    prepared = prepare(CHAT, body, SWITCHED, LIMITS)
    assert prepared is not None and prepared.body is body
    assert prepared.new_turns == [{"role": "user", "content": "next"}]
    only_private = SWITCHED[2:4]
    body = {"messages": [*resent[2:4], {"role": "user", "content": "next"}]}
    prepared = prepare(CHAT, body, only_private, LIMITS)
    assert prepared is not None and prepared.new_turns == [{"role": "user", "content": "next"}]
