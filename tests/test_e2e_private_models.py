"""Private models end to end: the real litellm binary in front of two fake providers on
loopback, a "local" one behind the private model and a "hosted" one behind the other,
each recording every byte it receives. What is told to the private model is recalled into
the private model's later requests, and never reaches the hosted provider: not as a
recalled memory, not as session history, not as a block put back for the cache's sake.
LiteLLM is the worker's shared one (tests/shared_litellm.py, where the two models are);
each test has its own proxy, memory and providers."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.stores.packed_text import unpack
from tests.fake_upstream import FakeUpstream
from tests.sdks import openai
from tests.shared_litellm import SharedLiteLLM
from tests.support import serve, wait_until

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.litellm
PRIVATE, HOSTED = "llama-local", "hosted-gpt"
# Told to the private model only, one for each test.
VAULT = "osprey-4471"
BUCKET = "kestrel-88"  # in a session that then moves to the hosted model
DEPLOY_KEY = "falcon-31"
USER = {"x-memory-user-id": "dev"}


# The proxy's own section; LiteLLM has no `memory` (it starts, and routes, with it).
PRIVATE_MODELS = f"""\
memory:
  private_models: [{PRIVATE}]
"""


@dataclass
class Stack:
    proxy_url: str
    local: FakeUpstream
    hosted: FakeUpstream
    database: Path

    def client(self, session: str, memory: str | None = None) -> openai.OpenAI:
        """`memory` is the request's x-memory mode (default: read and write)."""
        mode = {"x-memory": memory} if memory else {}
        return openai.OpenAI(
            base_url=f"{self.proxy_url}/v1",
            api_key="anything",
            default_headers={**USER, "x-session-id": session, **mode},
        )

    def _stored(self, holding: str) -> list[tuple[str, bool]]:
        """(text, private) of the user's memories holding a word (texts are packed)."""
        with sqlite3.connect(self.database) as db:
            rows = db.execute("SELECT text, private FROM memories WHERE user_id = 'dev'")
            texts = [(unpack(text), bool(flag)) for text, flag in rows]
        return [(text, flag) for text, flag in texts if holding in text]

    def memories(self, holding: str) -> list[str]:
        """The texts of the user's memories holding a word."""
        return [text for text, _ in self._stored(holding)]

    def private_flags(self, holding: str) -> list[bool]:
        return [flag for _, flag in self._stored(holding)]

    def everything_the_hosted_provider_received(self) -> bytes:
        return b"\n".join(
            b"".join([*(name + b": " + value for name, value in r.raw_headers), r.body])
            for r in self.hosted.requests
        )


@pytest.fixture
def stack(shared_litellm: SharedLiteLLM, tmp_path: Path) -> Iterator[Stack]:
    local = FakeUpstream(reply_text="Noted, locally.")
    hosted = FakeUpstream(reply_text="Noted.")
    config = shared_litellm.config(tmp_path, PRIVATE_MODELS)
    database = tmp_path / "memory.sqlite3"
    settings = shared_litellm.settings(config, database)
    assert settings.warnings == ()
    with (
        serve(MemoryProxy(settings)) as proxy_url,
        shared_litellm.providers(local=local, hosted=hosted),
    ):
        yield Stack(proxy_url, local, hosted, database)


def chat(
    stack: Stack,
    session: str,
    model: str,
    messages: list[ChatCompletionMessageParam],
    stream: bool = False,
    memory: str | None = None,
    **extra: Any,
) -> dict[str, str]:
    """One request through the proxy and LiteLLM; the answer's headers."""
    client = stack.client(session, memory)
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model=model, messages=messages, stream=True, extra_body=extra or None
        ) as streamed:
            for _ in streamed.iter_lines():
                pass
            return {name.lower(): value for name, value in streamed.headers.items()}
    answer = client.chat.completions.with_raw_response.create(
        model=model, messages=messages, extra_body=extra or None
    )
    return {name.lower(): value for name, value in answer.headers.items()}


def said(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def last_body(upstream: FakeUpstream) -> str:
    return json.dumps(json.loads(upstream.requests[-1].body))


def test_what_the_private_model_is_told_stays_with_private_models(stack: Stack) -> None:
    chat(stack, "monday", PRIVATE, said(f"Remember this: the vault code is {VAULT}."))
    wait_until(lambda: stack.memories(VAULT) != [])

    # Recalled into a later request to the private model, in another session, streaming.
    headers = chat(stack, "tuesday", PRIVATE, said("What is the vault code?"), stream=True)
    assert headers["x-memory-recalled"] != "0"
    assert "<recalled-memories" in last_body(stack.local) and VAULT in last_body(stack.local)

    # Never into the hosted model's: the same question, in new sessions. These read memory
    # only (x-memory: read), so that no hosted memory of the question itself is there to
    # be recalled by the next one: only the private memory could be, and must not.
    hosted_before = len(stack.hosted.requests)
    question = said("What is the vault code?")
    for stream in (False, True):
        headers = chat(stack, f"wednesday-{stream}", HOSTED, question, stream, memory="read")
        assert headers["x-memory-recalled"] == "0"
    assert len(stack.hosted.requests) == hosted_before + 2  # LiteLLM routed them there

    # Nor into a private model's request that LiteLLM may send to the hosted one.
    fallback = chat(stack, "thursday", PRIVATE, question, memory="read", fallbacks=[HOSTED])
    assert fallback["x-memory-recalled"] == "0"
    assert VAULT not in last_body(stack.local)
    assert VAULT.encode() not in stack.everything_the_hosted_provider_received()
    assert stack.private_flags(VAULT) == [True]  # the memory, kept marked


def test_a_session_moving_to_the_hosted_model_goes_on_with_its_hosted_turns(
    stack: Stack,
) -> None:
    """A client sending its newest message only: the proxy puts the session back, without
    what the private model was told, and all of it when the session returns there."""
    chat(stack, "switch", HOSTED, said("Our deploys run on Fridays."))
    chat(stack, "switch", PRIVATE, said(f"The backup bucket is {BUCKET}."))
    chat(stack, "switch", HOSTED, said("Which bucket holds the backups?"))
    to_hosted = json.loads(stack.hosted.requests[-1].body)["messages"]
    assert [m["content"] for m in to_hosted] == [
        "Our deploys run on Fridays.",
        "Noted.",
        "Which bucket holds the backups?",
    ]
    chat(stack, "switch", PRIVATE, said("And which day do deploys run?"))
    to_local = [m["content"] for m in json.loads(stack.local.requests[-1].body)["messages"]]
    assert to_local[:6] == [
        "Our deploys run on Fridays.",
        "Noted.",
        f"The backup bucket is {BUCKET}.",
        "Noted, locally.",
        "Which bucket holds the backups?",
        "Noted.",
    ]
    session = httpx.get(f"{stack.proxy_url}/v1/sessions/switch", headers=USER).json()
    assert [bool(m.get("private")) for m in session["messages"]] == [
        False,
        False,
        True,
        True,
        False,
        False,
        True,
        True,
    ]
    assert BUCKET.encode() not in stack.everything_the_hosted_provider_received()


def test_a_block_recalled_for_the_private_model_is_not_put_back_for_the_hosted_one(
    stack: Stack,
) -> None:
    """A client keeping its conversation (as agents do) moves it to the hosted model: the
    proxy would put the recalled block back at the same turn, to keep the provider's
    cached prefix, but this block holds what the private model was told."""
    chat(stack, "agent-told", PRIVATE, said(f"Remember: the deploy key is {DEPLOY_KEY}."))
    wait_until(lambda: stack.memories(DEPLOY_KEY) != [])
    question = "What is the deploy key?"
    headers = chat(stack, "agent", PRIVATE, said(question))
    assert headers["x-memory-recalled"] != "0" and DEPLOY_KEY in last_body(stack.local)
    conversation: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": "Noted, locally."},
        {"role": "user", "content": "thanks"},
    ]
    chat(stack, "agent", HOSTED, conversation)
    assert json.loads(stack.hosted.requests[-1].body)["messages"] == conversation
    chat(stack, "agent", PRIVATE, conversation)
    assert DEPLOY_KEY in last_body(stack.local)  # put back where it may go
    assert DEPLOY_KEY.encode() not in stack.everything_the_hosted_provider_received()


def test_the_memories_api_and_routing_say_which_memories_and_models_are_private(
    stack: Stack,
) -> None:
    chat(stack, "api-1", PRIVATE, said("The staging host is heron-9."))
    chat(stack, "api-2", HOSTED, said("The staging port is 5433."))
    wait_until(lambda: stack.memories("heron-9") != [] and stack.memories("5433") != [])
    listed = httpx.get(f"{stack.proxy_url}/v1/memories", headers=USER).json()["data"]
    flags = {item["text"].split("\n")[0]: item["private"] for item in listed}
    assert flags["User: The staging host is heron-9."] is True
    assert flags["User: The staging port is 5433."] is False
    for model, privacy in ((PRIVATE, "private"), (HOSTED, "hosted")):
        routing = httpx.get(f"{stack.proxy_url}/v1/debug/routing", params={"model": model})
        assert routing.json()["model_privacy"] == privacy
