"""End to end through the real litellm binary, driven by the real OpenAI and Anthropic SDKs.

`demo` is the shipped config's offline model (the proxy's own echo endpoint: LiteLLM's
calls are relayed to the test's proxy); `fake-gpt` and the Supermemory-routed `sm-model`
go through LiteLLM's real provider path to a fake provider on loopback, which records the
headers it received. LiteLLM is the worker's shared one (tests/shared_litellm.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from tests.fake_upstream import FakeUpstream
from tests.litellm_support import CLIENT_APIS, ask_demo
from tests.sdks import anthropic, openai
from tests.shared_litellm import MASTER_KEY, SDK_USERS, Relay, SharedLiteLLM
from tests.support import serve, wait_until

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.litellm
SM_KEY = "sm-e2e-secret"


@dataclass
class Stack:
    proxy_url: str
    provider: FakeUpstream


@pytest.fixture
def stack(shared_litellm: SharedLiteLLM, tmp_path: Path) -> Iterator[Stack]:
    """A proxy of the test's own in front of LiteLLM; `demo` answered by this proxy."""
    provider = FakeUpstream(reply_text="Hello from the fake provider")
    config = shared_litellm.config(tmp_path, SDK_USERS)
    settings = shared_litellm.settings(
        config, tmp_path / "memory.sqlite3", environ={"SUPERMEMORY_API_KEY": SM_KEY}
    )
    with (
        serve(MemoryProxy(settings)) as proxy_url,
        shared_litellm.providers(provider=provider, demo=Relay(proxy_url)),
    ):
        yield Stack(proxy_url, provider)


HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("api", CLIENT_APIS)
def test_demo_answers_every_client_api_and_shows_the_stored_history(stack: Stack, api: str) -> None:
    """The shipped offline model streams through every API LiteLLM offers, and a second
    request in the same session sees the first exchange that memory put back."""
    who = {"x-session-id": f"demo-{api}", "x-memory-user-id": f"demo-{api}"}
    requests_before = usage_totals(stack.proxy_url)["total"]["requests"]

    first = ask_demo(stack.proxy_url, api, who, "My name is Alice")
    assert "".join(first) == (
        "Echo model: I received 1 message (1 user).\nYour last message:\nMy name is Alice"
    )
    if api.endswith("-stream"):
        assert len(first) > 1
    wait_until(lambda: stored_messages(stack.proxy_url, who) == 2)

    second = "".join(ask_demo(stack.proxy_url, api, who, "What is my name?"))
    assert second.startswith("Echo model: I received 3 messages (2 user, 1 assistant).\n")
    assert second.endswith("\nYour last message:\nWhat is my name?")

    # LiteLLM's own calls to the echo endpoint are served locally, not counted.
    user = who["x-memory-user-id"]
    wait_until(lambda: user_totals(stack.proxy_url, user).get("requests") == 2)
    assert usage_totals(stack.proxy_url)["total"]["requests"] == requests_before + 2


def usage_totals(proxy_url: str) -> dict[str, Any]:
    response = httpx.get(f"{proxy_url}/v1/usage", params={"group_by": "user"})
    totals: dict[str, Any] = response.json()
    return totals


def user_totals(proxy_url: str, user_id: str) -> dict[str, int]:
    rows = usage_totals(proxy_url)["data"]
    return next((row for row in rows if row["user"] == user_id), {})


def stored_messages(proxy_url: str, who: dict[str, str]) -> int:
    session = who["x-session-id"]
    response = httpx.get(f"{proxy_url}/v1/sessions/{session}", headers=who)
    return len(response.json().get("messages", [])) if response.status_code == 200 else 0


def test_supermemory_scope_reaches_only_the_routed_provider(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.proxy_url}/v1", api_key="anything")
    stack.provider.requests.clear()
    headers = {"x-session-id": "conv-1", "x-sm-user-id": "mallory"}
    for model in ("sm-model", "fake-gpt"):
        for stream in (False, True):
            assert chat_text(client, model, stream, headers) == "Hello from the fake provider"
    routed = [r for r in stack.provider.requests if r.path.startswith("/supermemory.ai/")]
    plain = [r for r in stack.provider.requests if r.path == "/v1/chat/completions"]
    assert len(routed) == 2 and len(plain) == 2
    for request in routed:
        assert request.headers["x-sm-user-id"] == "openai-python"
        assert request.headers["x-supermemory-api-key"] == SM_KEY
        assert request.headers["x-sm-conversation-id"] == "conv-1"
    for request in plain:
        assert not {"x-sm-user-id", "x-supermemory-api-key", "x-sm-conversation-id"} & set(
            request.headers
        )
        assert MASTER_KEY not in str(request.headers)


def chat_text(
    client: openai.OpenAI, model: str, stream: bool, headers: dict[str, str]
) -> str | None:
    """The answer to "hi", whole or streamed."""
    if stream:
        chunks = client.chat.completions.create(
            model=model, messages=HI, stream=True, extra_headers=headers
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    answer = client.chat.completions.create(model=model, messages=HI, extra_headers=headers)
    return answer.choices[0].message.content


def test_local_memory_through_litellm_with_both_sdks(stack: Stack) -> None:
    session = {"x-session-id": "e2e-memory", "x-memory-user-id": "carol"}
    openai_client = openai.OpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key="anything", default_headers=session
    )
    anthropic_client = anthropic.Anthropic(
        base_url=stack.proxy_url, api_key="anything", default_headers=session
    )

    stack.provider.requests.clear()
    openai_client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "My name is Carol"}]
    )
    wait_until(lambda: stored_messages(stack.proxy_url, session) == 2)
    with anthropic_client.messages.stream(
        model="fake-claude", max_tokens=50, messages=[{"role": "user", "content": "Who am I?"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake provider"
    wait_until(lambda: stored_messages(stack.proxy_url, session) == 4)
    second = json.loads(stack.provider.requests[-1].body)
    texts = [
        m["content"] if isinstance(m["content"], str) else m["content"][0]["text"]
        for m in second["messages"]
    ]
    assert texts == ["My name is Carol", "Hello from the fake provider", "Who am I?"]


def test_usage_of_a_stream_through_litellm_is_counted(stack: Stack) -> None:
    """LiteLLM ends the stream with its token counts because the proxy asked for them."""
    who = {"x-memory-user-id": "usage-e2e"}
    client = openai.OpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key="anything", default_headers=who
    )
    stream = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text.endswith("Your last message:\nhi")

    wait_until(lambda: user_totals(stack.proxy_url, "usage-e2e").get("streams") == 1)
    assert user_totals(stack.proxy_url, "usage-e2e")["prompt_tokens"] > 0
    assert user_totals(stack.proxy_url, "usage-e2e")["completion_tokens"] > 0


@pytest.mark.parametrize("model", ["fake-gpt", "fake-alias", "openai/fake-gpt", "fake-gpt-id"])
def test_every_name_litellm_routes_reaches_it(stack: Stack, model: str) -> None:
    """A model_name, an alias, a deployment's litellm_params.model, its model_info.id:
    LiteLLM serves each, so the proxy's check of model names lets each through."""
    client = openai.OpenAI(base_url=f"{stack.proxy_url}/v1", api_key="anything")
    assert chat_text(client, model, False, {}) == "Hello from the fake provider"


MODELS = (
    "(the models: demo, fake-alias, fake-claude, fake-codex, fake-embed, fake-gpt, "
    "hosted-gpt, llama-local, sm-model)"
)


def test_a_mistyped_model_is_told_the_models_in_each_apis_words(stack: Stack) -> None:
    unknown = "model 'fake-gtp' is not one of LiteLLM's models here; did you mean 'fake-gpt'? "
    openai_client = openai.OpenAI(base_url=f"{stack.proxy_url}/v1", api_key="anything")
    with pytest.raises(openai.BadRequestError) as chat:
        openai_client.chat.completions.create(model="fake-gtp", messages=HI)
    with pytest.raises(openai.BadRequestError) as responses:
        openai_client.responses.create(model="fake-gtp", input="hi", stream=True)
    for refused in (chat.value, responses.value):
        assert refused.body == {
            "message": unknown + MODELS,
            "type": "invalid_request_error",
            "code": "400",
        }
    anthropic_client = anthropic.Anthropic(base_url=stack.proxy_url, api_key="anything")
    with pytest.raises(anthropic.BadRequestError) as messages:
        anthropic_client.messages.create(
            model="fake-gtp", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert messages.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": unknown + MODELS},
    }
