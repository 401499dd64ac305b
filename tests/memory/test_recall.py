from __future__ import annotations

import asyncio
import dataclasses
import re
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.indexing import exchange_text
from memory_proxy.memory.placed_blocks import Conversation, LocalBlocks, Placed
from memory_proxy.memory.question import HumanTurn, last_human_turn
from memory_proxy.memory.recall import Recall, RecallOutcome
from memory_proxy.records.memory import MemoryRecord, Privacy, memory_id
from memory_proxy.wire.base import ChatFormat
from memory_proxy.wire.registry import CHAT, MESSAGES
from tests.memory.recall_support import BrokenIndex, SlowIndex, WordIndex

DEPLOY = "User: how do we deploy the service?\nAssistant: with the deploy.sh script on the VM"


def memory(
    text: str = DEPLOY,
    user_id: str = "alice",
    project: str = "repo-1",
    session_id: str | None = "old-session",
) -> MemoryRecord:
    identifier = memory_id(user_id, project, text)
    return MemoryRecord(identifier, user_id, project, session_id, "claude-cli", "m", 0.0, text)


def index_with(*records: MemoryRecord) -> WordIndex:
    index = WordIndex()
    asyncio.run(index.add(list(records)))
    return index


class Counts:
    def __init__(self) -> None:
        self.timeouts = 0
        self.failures = 0

    def timeout(self) -> None:
        self.timeouts += 1

    def failure(self) -> None:
        self.failures += 1


def recall(index: WordIndex, counts: Counts | None = None, **settings: Any) -> Recall:
    counts = counts or Counts()
    return Recall(
        index,
        dataclasses.replace(RecallSettings(), **settings),
        on_timeout=counts.timeout,
        on_failure=counts.failure,
    )


def apply(
    recaller: Recall,
    body: dict[str, Any],
    wire: ChatFormat = CHAT,
    session_id: str | None = "s1",
    user_id: str = "alice",
    project: str = "repo-1",
    privacy: Privacy = "hosted",
) -> RecallOutcome:
    return asyncio.run(
        recaller.apply(
            wire,
            body,
            body,
            last_human_turn(wire, body),
            user_id=user_id,
            project=project,
            session_id=session_id,
            history_injected=False,
            privacy=privacy,
        )
    )


def ask(*texts: str) -> dict[str, Any]:
    """A full-history conversation: the texts alternate user, assistant, …, user."""
    roles = ["user", "assistant"]
    return {"messages": [{"role": roles[i % 2], "content": text} for i, text in enumerate(texts)]}


def test_a_new_question_gets_the_matching_memories_in_its_turn() -> None:
    index = index_with(memory(), memory("User: lunch?\nAssistant: pizza"))
    outcome = apply(recall(index), ask("How do we deploy?"))
    assert outcome.recalled == 1
    assert outcome.body is not None
    content = outcome.body["messages"][0]["content"]
    assert content.startswith("<recalled-memories-") and content.endswith("How do we deploy?")
    assert "deploy.sh" in content and "pizza" not in content
    assert index.searches == [("alice", "repo-1", "How do we deploy?", "s1")]


def test_nothing_is_searched_without_a_new_question() -> None:
    index = index_with(memory())
    tool_loop = {
        "messages": [
            {"role": "user", "content": "deploy it"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
            {"role": "tool", "tool_call_id": "c", "content": "deployed"},
        ]
    }
    assert apply(recall(index), tool_loop) == RecallOutcome(None, 0)
    assert index.searches == []


def test_a_memory_sharing_a_word_by_chance_is_not_recalled() -> None:
    index = index_with(memory("User: branch names follow initials/topic\nAssistant: ok"))
    assert apply(recall(index), ask("What's a good name for a cat?")).recalled == 0
    assert apply(recall(index), ask("How should branch names look?")).recalled == 1


def test_low_scores_and_other_scopes_are_never_recalled() -> None:
    index = index_with(memory())
    assert apply(recall(index, min_score=1.0), ask("How do we deploy to k8s?")).recalled == 0
    assert apply(recall(index), ask("How do we deploy?"), user_id="bob").recalled == 0
    assert apply(recall(index), ask("How do we deploy?"), project="other").recalled == 0


def test_a_slow_backend_costs_the_timeout_and_is_counted() -> None:
    counts = Counts()
    outcome = apply(recall(SlowIndex(), counts, timeout_ms=20), ask("How do we deploy?"))
    assert outcome == RecallOutcome(None, 0, tokens=0)  # searched, nothing put in
    assert (counts.timeouts, counts.failures) == (1, 0)


def test_a_failing_backend_is_counted_and_the_request_goes_on() -> None:
    counts = Counts()
    assert apply(recall(BrokenIndex(), counts), ask("deploy?")) == RecallOutcome(None, 0, 0)
    assert (counts.timeouts, counts.failures) == (0, 1)


def test_later_requests_get_the_same_block_back_at_the_same_turn() -> None:
    index = index_with(memory())
    recaller = recall(index)
    first = apply(recaller, ask("How do we deploy?")).body
    assert first is not None
    recalled_turn = orjson.dumps(first["messages"][0])
    # Next turn: the client resends its own first message, without the block.
    second = apply(recaller, ask("How do we deploy?", "With deploy.sh", "And lunch?")).body
    assert second is not None
    assert orjson.dumps(second["messages"][0]) == recalled_turn  # the cached prefix holds
    assert second["messages"][2]["content"] == "And lunch?"  # nothing matched this one
    history = ["How do we deploy?", "With deploy.sh", "And lunch?", "Pizza"]
    fourth = apply(recaller, ask(*history, "Deploy the service now")).body
    assert fourth is not None
    recalled_again = orjson.dumps(fourth["messages"][4])
    assert b"<recalled-memories-" in recalled_again
    # Each block has its own random name, remembered with it: put back as it was sent.
    names = [
        re.findall(rb"<recalled-memories-\w+>", turn) for turn in (recalled_turn, recalled_again)
    ]
    assert len(names[0]) == len(names[1]) == 1 and names[0] != names[1]
    assert orjson.dumps(fourth["messages"][0]) == recalled_turn
    # Its tool loop: nothing searched, both blocks stay where they were.
    searches = len(index.searches)
    loop = ask(*history, "Deploy the service now")
    loop["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    fifth = apply(recaller, loop).body
    assert fifth is not None
    assert orjson.dumps(fifth["messages"][0]) == recalled_turn
    assert orjson.dumps(fifth["messages"][4]) == recalled_again
    assert fifth["messages"][2]["content"] == "And lunch?"
    assert len(index.searches) == searches


def test_a_turn_the_client_changed_loses_its_block() -> None:
    recaller = recall(index_with(memory()))
    apply(recaller, ask("How do we deploy?"))
    edited = apply(recaller, ask("How do we test?", "With pytest", "ok?")).body
    assert edited is None or "<recalled" not in str(edited["messages"][0])


def test_blocks_are_kept_per_conversation() -> None:
    recaller = recall(index_with(memory()))
    apply(recaller, ask("How do we deploy?"), session_id="s1")
    other = apply(recaller, ask("How do we deploy?", "With deploy.sh", "ok"), session_id="s2")
    assert other.body is None


def test_without_a_session_exchanges_already_in_the_request_are_not_recalled() -> None:
    question, answer = "How do we deploy the service?", "with the deploy.sh script on the VM"
    in_context = memory(exchange_text(question, answer), session_id=None)
    recaller = recall(index_with(in_context))
    outcome = apply(recaller, ask(question, answer, "deploy again?"), session_id=None)
    assert outcome.recalled == 0


def test_system_placement_keeps_one_block_through_the_tool_loop() -> None:
    recaller = recall(index_with(memory()), placement="system")
    body = {"system": "S", "messages": [{"role": "user", "content": "How do we deploy?"}]}
    first = apply(recaller, body, wire=MESSAGES)
    assert first.recalled == 1 and first.body is not None
    assert first.body["system"].startswith("S\n\n<recalled-memories-")
    assert first.body["messages"] == body["messages"]
    loop = {
        "system": "S",
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
        ],
    }
    again = apply(recaller, loop, wire=MESSAGES)
    assert again.body is not None and again.body["system"] == first.body["system"]


def test_with_injected_history_the_block_goes_to_the_latest_turn() -> None:
    recaller = recall(index_with(memory()))
    payload = ask("How do we deploy?")
    outgoing = ask("earlier", "reply", "How do we deploy?")
    outcome = asyncio.run(
        recaller.apply(
            CHAT,
            payload,
            outgoing,
            last_human_turn(CHAT, payload),
            user_id="alice",
            project="repo-1",
            session_id="s1",
            history_injected=True,
        )
    )
    assert outcome.body is not None
    assert [m["content"][:5] for m in outcome.body["messages"]] == ["earli", "reply", "<reca"]


def test_a_retried_request_gets_one_block() -> None:
    recaller = recall(index_with(memory()))
    body = {
        "messages": [
            {"role": "user", "content": "How do we deploy?"},
            {"role": "system", "content": "Primary working directory: /repo"},
        ]
    }
    apply(recaller, body)
    again = apply(recaller, body).body
    assert again is not None
    assert again["messages"][0]["content"].count("<recalled-memories-") == 1


def test_a_question_followed_by_a_system_message_is_recalled_for_in_its_turn() -> None:
    """Claude Code 2.1 (`claude -p`) sends its environment after the question."""
    recaller = recall(index_with(memory()))
    body = {
        "messages": [
            {"role": "user", "content": "How do we deploy?"},
            {"role": "system", "content": "Primary working directory: /repo"},
        ]
    }
    outcome = apply(recaller, body)
    assert outcome.recalled == 1 and outcome.body is not None
    assert outcome.body["messages"][0]["content"].startswith("<recalled-memories-")
    assert outcome.body["messages"][1] == body["messages"][1]


def test_a_private_models_memory_is_recalled_into_private_requests_only() -> None:
    told_llama = dataclasses.replace(memory(), private=True)
    cases: list[tuple[Privacy, int]] = [("private", 1), ("mixed", 0), ("hosted", 0)]
    for privacy, recalled in cases:
        outcome = apply(recall(index_with(told_llama)), ask("How do we deploy?"), privacy=privacy)
        assert outcome.recalled == recalled
        assert ("deploy.sh" in str(outcome.body)) == (privacy == "private")


def test_a_block_holding_a_private_memory_is_put_back_into_private_requests_only() -> None:
    """The conversation goes on with a hosted model: its resent turn gets no block back,
    even though the block was placed there for the cache's sake."""
    recaller = recall(index_with(dataclasses.replace(memory(), private=True)))
    first = apply(recaller, ask("How do we deploy?"), privacy="private").body
    assert first is not None and "deploy.sh" in first["messages"][0]["content"]
    resent = ask("How do we deploy?", "With deploy.sh", "thanks")  # no topic word: no search
    assert apply(recaller, resent, privacy="hosted").body is None
    assert apply(recaller, resent, privacy="mixed").body is None
    back = apply(recaller, resent, privacy="private").body
    assert back is not None and back["messages"][0] == first["messages"][0]


def test_a_block_of_hosted_memories_is_put_back_whatever_the_model() -> None:
    recaller = recall(index_with(memory()))
    first = apply(recaller, ask("How do we deploy?"), privacy="private").body
    back = apply(recaller, ask("How do we deploy?", "With deploy.sh", "thanks")).body
    assert first is not None and back is not None
    assert back["messages"][0] == first["messages"][0]


def test_system_placement_keeps_a_private_block_from_hosted_requests() -> None:
    recaller = recall(index_with(dataclasses.replace(memory(), private=True)), placement="system")
    body = {"system": "S", "messages": [{"role": "user", "content": "How do we deploy?"}]}
    first = apply(recaller, body, wire=MESSAGES, privacy="private")
    assert first.body is not None and "deploy.sh" in first.body["system"]
    loop = {
        "system": "S",
        "messages": [
            *body["messages"],
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "x"}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
        ],
    }
    assert apply(recaller, loop, wire=MESSAGES, privacy="hosted").body is None
    again = apply(recaller, loop, wire=MESSAGES, privacy="private")
    assert again.body is not None and again.body["system"] == first.body["system"]


class CountedBlocks(LocalBlocks):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def blocks(self, conversation: Conversation) -> asyncio.Future[dict[int, Placed]]:
        self.reads += 1
        return super().blocks(conversation)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=30), st.sampled_from(["hi", "thanks!", "deploy?", "5", "é"])),
    st.integers(0, 3),
    st.booleans(),
    st.sampled_from([None, "s1"]),
    st.booleans(),
    st.sampled_from(["user", "system"]),
)
def test_recall_is_idle_only_when_apply_would_neither_search_nor_read_blocks(
    text: str, position: int, latest: bool, session_id: str | None, injected: bool, placement: str
) -> None:
    """RequestMemory.begin skips `apply` when `idle` says so: that must be when `apply`
    does nothing. `idle` judges only a turn that surely asks nothing; any other is left
    to `apply`, which reads its words once."""
    index, placed = WordIndex(), CountedBlocks()
    recaller = Recall(
        index,
        dataclasses.replace(RecallSettings(), placement=placement),
        on_timeout=lambda: None,
        on_failure=lambda: None,
        placed=placed,
    )
    turn = HumanTurn(position, text, latest) if text else None
    body = ask(*["q"] * position, text or "q")

    async def outcome() -> RecallOutcome:
        return await recaller.apply(
            CHAT,
            body,
            body,
            turn,
            user_id="alice",
            project="repo-1",
            session_id=session_id,
            history_injected=injected,
        )

    idle = recaller.idle(turn, session_id, injected)
    result = asyncio.run(outcome())
    nothing_done = not index.searches and not placed.reads
    assert idle == (nothing_done and (turn is None or turn.asks_nothing()))
    if idle:
        assert result == RecallOutcome(None, 0)
