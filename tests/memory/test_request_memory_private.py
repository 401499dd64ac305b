"""A conversation that moves between private and hosted models, through the whole of
memory (session history, recall, indexing) over the real SQLite index: nothing said to a
private model reaches a request that may go to a hosted one, unless the client itself
sent it, and a private model's request gets it all."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from memory_proxy.config.recall import PLACEMENTS, RecallSettings
from memory_proxy.memory.request_memory import MemoryScope, RequestMemory
from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.records.messages import Message
from memory_proxy.stores.in_memory import InMemoryStore
from memory_proxy.stores.sqlite import IN_MEMORY
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.wire.registry import CHAT
from tests.litellm_support import RECALL_BUDGET_MS
from tests.memory.recall_support import request_memory
from tests.memory.test_request_memory import finished
from tests.support import eventually

SESSIONS = ["s1", "s2", None]  # None: a client that names no conversation


@dataclass(frozen=True)
class Step:
    privacy: Privacy
    session: str | None
    resends: bool  # the client sends its whole conversation, as agents and IDEs do


class CountingStore(InMemoryStore):
    """Counts the messages stored, for the test to wait on."""

    appended = 0

    async def append(
        self, user_id: str, session_id: str, messages: list[Message], *, partial: bool
    ) -> int:
        dropped = await super().append(user_id, session_id, messages, partial=partial)
        self.appended += len(messages)
        return dropped


@dataclass
class CountingIndex:
    """The real index, counting the memories written, for the test to wait on."""

    index: SQLiteMemoryIndex
    added: int = 0

    async def add(self, records: list[MemoryRecord]) -> None:
        await self.index.add(records)
        self.added += len(records)

    async def search(self, *args: Any, **kwargs: Any) -> Any:
        return await self.index.search(*args, **kwargs)

    async def aclose(self) -> None:
        await self.index.aclose()


@dataclass
class Conversation:
    """What the client holds: its turns per session, and which words were private."""

    turns: dict[str | None, list[dict[str, str]]] = field(default_factory=dict)
    private_words: set[str] = field(default_factory=set)
    said: dict[str | None, list[tuple[str, Privacy]]] = field(default_factory=dict)


def question(number: int) -> str:
    """Every question shares the topic words, so each memory is recalled for the next;
    each carries a word of its own (`w3q`: no word is part of another)."""
    return f"zebra migration script w{number}q"


async def run(steps: list[Step], placement: str) -> None:
    """The steps in order, each waiting for its exchange to be stored and indexed."""
    store = CountingStore(3600)
    index = CountingIndex(SQLiteMemoryIndex(Path(IN_MEMORY)))
    recall = dataclasses.replace(RecallSettings(), placement=placement, timeout_ms=10_000)
    memory = request_memory(store, index, recall)
    memory.start()
    seen = Conversation()
    try:
        for number, step in enumerate(steps):
            await one_request(memory, store, index, seen, number, step)
    finally:
        await memory.aclose()
        await index.aclose()


async def one_request(
    memory: RequestMemory,
    store: CountingStore,
    index: CountingIndex,
    seen: Conversation,
    number: int,
    step: Step,
) -> None:
    word = f"w{number}q"
    asked = {"role": "user", "content": question(number)}
    earlier = seen.turns.get(step.session, []) if step.resends else []
    payload: dict[str, Any] = {"model": "m", "messages": [*earlier, asked]}
    scope = MemoryScope(
        "alice",
        step.session,
        "repo",
        "client",
        "m",
        reads=True,
        writes=True,
        session_memory=step.session is not None,
        privacy=step.privacy,
    )
    turn = await memory.begin(CHAT, payload, payload, scope)
    assert turn is not None
    sent = orjson.dumps(turn.body).decode()
    from_client = orjson.dumps(payload).decode()
    if step.privacy != "private":
        leaked = {w for w in seen.private_words if w in sent and w not in from_client}
        assert not leaked, f"{step}: memory put {leaked} into a request that may go to a host"
    if step.session is not None and not step.resends:
        # Session history: all of it for a private model, the hosted turns for the others.
        for earlier_word, privacy in seen.said.get(step.session, []):
            shown = step.privacy == "private" or privacy == "hosted"
            assert (earlier_word in sent) == shown, (step, earlier_word, privacy)
    appended, indexed = store.appended, index.added
    answer = f"noted {word}"
    memory.finish(turn, finished({"role": "assistant", "content": answer}))
    if step.session is not None:
        await eventually(lambda: store.appended > appended)
    await eventually(lambda: index.added > indexed)
    if step.privacy != "hosted":
        seen.private_words.add(word)
    seen.said.setdefault(step.session, []).append((word, step.privacy))
    if step.session is not None:
        seen.turns[step.session] = [*payload["messages"], {"role": "assistant", "content": answer}]


steps = st.builds(
    Step,
    st.sampled_from(["hosted", "private", "mixed"]),
    st.sampled_from(SESSIONS),
    st.booleans(),
)


# Told to the private model in one session, recalled into another's turn for the private
# model, which the client then resends to a hosted model: the block must not come back.
PUT_BACK = [Step("private", "s2", False), Step("private", "s1", False), Step("hosted", "s1", True)]
# The session's private turns, asked of a hosted model by a client sending its newest turn.
SWITCH = [Step("private", "s1", False), Step("hosted", "s1", False), Step("private", "s1", False)]


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, min_size=1, max_size=8), st.sampled_from(PLACEMENTS))
@example(PUT_BACK, "user")
@example(SWITCH, "user")
@example([Step("private", None, False), Step("mixed", None, True)], "system")
def test_private_words_never_reach_a_request_that_may_go_to_a_hosted_model(
    sequence: list[Step], placement: str
) -> None:
    asyncio.run(run(sequence, placement))  # each memory written at once: conftest.py


def test_a_private_models_memory_is_recalled_for_a_later_private_request() -> None:
    """The other side: the feature works. Told to the private model in one session, found
    for it in another; not for the hosted model."""

    async def scenario() -> None:
        store = CountingStore(3600)
        # What is recalled is the point: the tests' budget, for the search and for recall
        # (the shipped 50 ms is missed at times on a loaded machine, and nothing recalled).
        budget = RECALL_BUDGET_MS / 1000
        index = CountingIndex(SQLiteMemoryIndex(Path(IN_MEMORY), search_budget=budget))
        memory = request_memory(store, index, RecallSettings(timeout_ms=RECALL_BUDGET_MS))
        memory.start()
        seen = Conversation()
        try:
            await one_request(memory, store, index, seen, 0, Step("private", "s1", False))
            cases: list[tuple[Privacy, int]] = [("private", 1), ("hosted", 0), ("mixed", 0)]
            for privacy, recalled in cases:
                payload = {"messages": [{"role": "user", "content": question(9)}]}
                scope = MemoryScope(
                    "alice", "s2", "repo", "c", "m", True, True, True, privacy=privacy
                )
                turn = await memory.begin(CHAT, payload, payload, scope)
                assert turn is not None and turn.recalled == recalled
                assert ("w0q" in orjson.dumps(turn.body).decode()) == bool(recalled)
        finally:
            await memory.aclose()
            await index.aclose()

    asyncio.run(scenario())
