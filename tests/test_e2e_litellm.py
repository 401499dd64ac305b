"""End to end through the real litellm binary, driven by the real OpenAI and Anthropic SDKs.

`demo` is the shipped config's offline model (the proxy's own echo endpoint, on the test
proxy's port); `fake-gpt` and the Supermemory-routed `sm-model` go through LiteLLM's real
provider path to a fake provider on loopback, which records the headers it received.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import yaml
from openai.types.chat import ChatCompletionMessageParam

from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from tests.fake_upstream import FakeUpstream
from tests.litellm_support import CLIENT_APIS, ask_demo, litellm_process
from tests.support import free_port, serve, wait_until

pytestmark = pytest.mark.litellm
MASTER_KEY = "sk-e2e-" + "k" * 32
SM_KEY = "sm-e2e-secret"
MOCK_TEXT = "Hello from the mock model"
MOCK_DEMO = {"model": "openai/demo", "api_key": "not-needed", "mock_response": MOCK_TEXT}
SHIPPED_CONFIG = Path(__file__).parents[1] / "config.yaml"
SHIPPED_DEMO_BASE = "os.environ/MEMORY_PROXY_DEMO_URL"  # start-proxies sets it


def shipped_demo(proxy_url: str) -> dict[str, str]:
    """The shipped `demo` model's parameters, pointed at this test's proxy."""
    models = yaml.safe_load(SHIPPED_CONFIG.read_text())["model_list"]
    params: dict[str, str] = next(m for m in models if m["model_name"] == "demo")["litellm_params"]
    assert params["api_base"] == SHIPPED_DEMO_BASE
    return {**params, "api_base": f"{proxy_url}/demo/v1"}


def e2e_config(provider_url: str, demo: dict[str, str] = MOCK_DEMO) -> str:
    return f"""\
model_list:
  - model_name: demo
    litellm_params: {json.dumps(demo)}
  - model_name: fake-gpt
    litellm_params:
      model: openai/fake-gpt
      api_key: provider-key
      api_base: {provider_url}/v1
    model_info: {{id: fake-gpt-id}}
  - model_name: fake-claude
    litellm_params:
      model: anthropic/fake-claude
      api_key: provider-key
      api_base: {provider_url}
  - model_name: sm-model
    litellm_params:
      model: openai/sm-model
      api_key: provider-key
      api_base: {provider_url}/supermemory.ai/v1
litellm_settings:
  model_group_settings:
    forward_client_headers_to_llm_api: [sm-model]
router_settings:
  model_group_alias: {{fake-alias: fake-gpt}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
user_id_mappings:
  header_patterns:
    - header: user-agent
      pattern: "^OpenAI/Python"
      user_id: openai-python
    - header: user-agent
      pattern: "^Anthropic/Python"
      user_id: anthropic-python
"""


@dataclass
class Stack:
    proxy_url: str
    provider: FakeUpstream


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The proxy starts first, so that LiteLLM's config can name it for `demo`."""
    provider = FakeUpstream(reply_text="Hello from the fake provider")
    directory = tmp_path_factory.mktemp("e2e")
    config = directory / "config.yaml"
    litellm_port = free_port()
    with serve(provider) as provider_url:
        config.write_text(e2e_config(provider_url))  # for the proxy: Supermemory-routed models
        settings = load_settings(
            config,
            environ={"LITELLM_MASTER_KEY": MASTER_KEY, "SUPERMEMORY_API_KEY": SM_KEY},
            overrides={
                "proxy.litellm_url": f"http://127.0.0.1:{litellm_port}",
                "memory.sqlite_path": str(directory / "memory.sqlite3"),
            },
        )
        with serve(MemoryProxy(settings)) as proxy_url:
            config.write_text(e2e_config(provider_url, shipped_demo(proxy_url)))
            with litellm_process(config, litellm_port, MASTER_KEY):
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


MODELS = "(the models: demo, fake-alias, fake-claude, fake-gpt, sm-model)"


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
