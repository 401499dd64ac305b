"""Two proxies on one PostgreSQL in front of the real LiteLLM, driven as Claude Code drives
them: a fact told through A is recalled through B in a new session of the same
directory, and that conversation's next request, served by A, reaches the provider with
the recalled block where it was, byte for byte (the cached prefix)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings
from memory_proxy.config.recall import RecallSettings
from tests.fake_upstream import FakeUpstream
from tests.placements_support import wait_until_kept
from tests.sdks import anthropic
from tests.shared_litellm import SDK_USERS, SharedLiteLLM
from tests.support import serve, wait_until
from tests.test_e2e_recall import (
    CLAUDE_CODE_PATTERN,
    FACT,
    QUESTION,
    Stack,
    ask,
    claude_code,
    user_turn,
)

if TYPE_CHECKING:
    from anthropic.types import MessageParam

pytestmark = pytest.mark.litellm
REPO = "/home/dev/src/shared-service"


@dataclasses.dataclass
class TwoProxies:
    a: str
    b: str
    provider: FakeUpstream
    memory: MemorySettings  # the PostgreSQL both share


@pytest.fixture
def proxies(
    shared_litellm: SharedLiteLLM, tmp_path: Path, postgres_url: str
) -> Iterator[TwoProxies]:
    provider = FakeUpstream(reply_text="Noted.")
    config = shared_litellm.config(tmp_path, SDK_USERS + CLAUDE_CODE_PATTERN)
    memory = MemorySettings(store="postgres", postgres_url=postgres_url)
    settings = dataclasses.replace(
        shared_litellm.settings(config, tmp_path / "unused.sqlite3"),
        memory=memory,
        recall=RecallSettings(timeout_ms=5000),  # a busy machine: recall is the point
    )
    with (
        serve(MemoryProxy(settings)) as a,
        serve(MemoryProxy(settings)) as b,
        shared_litellm.providers(provider=provider),
    ):
        yield TwoProxies(a, b, provider, memory)


def claude_code_at(proxy: str, session_id: str) -> anthropic.Anthropic:
    """test_e2e_recall's Claude Code client, pointed at `proxy`."""
    return claude_code(Stack(proxy, FakeUpstream(), Path()), session_id)


def memories(proxy: str) -> list[str]:
    answer = httpx.get(f"{proxy}/v1/memories", params={"user_id": "claude-cli"})
    return [memory["text"] for memory in answer.json()["data"]]


def test_a_fact_told_to_one_proxy_is_recalled_by_the_other_and_its_prefix_kept(
    proxies: TwoProxies,
) -> None:
    ask(claude_code_at(proxies.a, "cc-told"), REPO, [user_turn(FACT)])
    wait_until(lambda: len(memories(proxies.b)) == 1)

    _, headers = ask(claude_code_at(proxies.b, "cc-asked"), REPO, [user_turn(QUESTION)])
    assert headers["x-memory-recalled"] == "1"
    first = json.loads(proxies.provider.requests[-1].body)
    block = first["messages"][0]["content"][0]
    assert "<recalled-memories-" in block["text"] and "heron-17" in block["text"]
    # B keeps where the block went after its request has gone on: the next turn, asked of
    # A at once, waits for it, as a client's next turn, seconds later, need not (one CI
    # run asked A first: no block put back).
    wait_until_kept(proxies.memory, "claude-cli", "cc-asked")

    history: list[MessageParam] = [
        user_turn(QUESTION, cached=False),
        {"role": "assistant", "content": "Noted."},
    ]
    ask(claude_code_at(proxies.a, "cc-asked"), REPO, [*history, user_turn("Anything else?")])
    second = json.loads(proxies.provider.requests[-1].body)
    assert second["messages"][0]["content"] == [block, *history[0]["content"]]
    assert json.dumps(second["system"]) == json.dumps(first["system"])
