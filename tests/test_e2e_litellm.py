"""End to end through the real litellm binary, driven by the real OpenAI and Anthropic SDKs.

LiteLLM answers `demo` itself (mock_response); `fake-gpt` and the Supermemory-routed
`sm-model` go through LiteLLM's real provider path to a fake provider on loopback, which
records the headers it received.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import httpx
import openai
import psutil
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from tests.launcher_support import running_launcher
from tests.litellm_support import litellm_binary, litellm_process
from tests.support import FakeUpstream, free_port, serve, wait_until

pytestmark = pytest.mark.litellm
MASTER_KEY = "sk-e2e-" + "k" * 32
SM_KEY = "sm-e2e-secret"
MOCK_TEXT = "Hello from the mock model"


def e2e_config(provider_url: str) -> str:
    return f"""\
model_list:
  - model_name: demo
    litellm_params:
      model: openai/demo
      api_key: not-needed
      mock_response: "{MOCK_TEXT}"
  - model_name: fake-gpt
    litellm_params:
      model: openai/fake-gpt
      api_key: provider-key
      api_base: {provider_url}/v1
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
    provider = FakeUpstream(reply_text="Hello from the fake provider")
    directory = tmp_path_factory.mktemp("e2e")
    with serve(provider) as provider_url:
        config = directory / "config.yaml"
        config.write_text(e2e_config(provider_url))
        with litellm_process(config, free_port(), MASTER_KEY) as litellm_url:
            settings = load_settings(
                config,
                environ={"LITELLM_MASTER_KEY": MASTER_KEY, "SUPERMEMORY_API_KEY": SM_KEY},
                overrides={
                    "proxy.litellm_url": litellm_url,
                    "memory.sqlite_path": str(directory / "memory.sqlite3"),
                },
            )
            with serve(MemoryProxy(settings)) as proxy_url:
                yield Stack(proxy_url, provider)


def test_openai_sdk_json_and_stream(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.proxy_url}/v1", api_key="anything")
    messages = [{"role": "user", "content": "hi"}]
    answer = client.chat.completions.create(model="demo", messages=messages)
    assert answer.choices[0].message.content == MOCK_TEXT
    stream = client.chat.completions.create(model="demo", messages=messages, stream=True)
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
    assert len(pieces) > 1
    assert "".join(pieces) == MOCK_TEXT


def test_anthropic_sdk_json_and_stream(stack: Stack) -> None:
    client = anthropic.Anthropic(base_url=stack.proxy_url, api_key="anything")
    messages = [{"role": "user", "content": "hi"}]
    answer = client.messages.create(model="demo", max_tokens=50, messages=messages)
    assert answer.content[0].text == MOCK_TEXT
    # LiteLLM 1.106.2 answers a streamed /v1/messages for a mock_response model with plain
    # JSON, so the stream goes through the real Anthropic provider path to the fake.
    with client.messages.stream(model="fake-claude", max_tokens=50, messages=messages) as stream:
        text = "".join(stream.text_stream)
    assert text == "Hello from the fake provider"


def test_supermemory_scope_reaches_only_the_routed_provider(stack: Stack) -> None:
    client = openai.OpenAI(base_url=f"{stack.proxy_url}/v1", api_key="anything")
    stack.provider.requests.clear()
    for model in ("sm-model", "fake-gpt"):
        for stream in (False, True):
            response = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": "hi"}],
                stream=stream,
                extra_headers={"x-session-id": "conv-1", "x-sm-user-id": "mallory"},
            )
            if stream:
                text = "".join(c.choices[0].delta.content or "" for c in response if c.choices)
            else:
                text = response.choices[0].message.content
            assert text == "Hello from the fake provider"
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


def test_start_proxies_survives_a_killed_litellm_and_stops_cleanly(tmp_path: Path) -> None:
    config = e2e_config("http://127.0.0.1:9")
    with running_launcher(tmp_path, litellm_binary(), config_text=config) as launcher:
        launcher.wait_healthy(within=120)
        client = openai.OpenAI(base_url=f"{launcher.proxy_url}/v1", api_key="anything")
        ask = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        assert client.chat.completions.create(**ask).choices[0].message.content == MOCK_TEXT
        first = launcher.litellm_pid()
        assert first is not None
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: launcher.litellm_pid() not in (first, None), timeout=30)
        # Sent while LiteLLM restarts: the proxy holds it until LiteLLM is ready again.
        assert client.chat.completions.create(**ask).choices[0].message.content == MOCK_TEXT
        family = launcher.family()
        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.process.wait(timeout=60) == 0
        assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert "litellm ready" in launcher.output()


def test_local_memory_through_litellm_with_both_sdks(stack: Stack) -> None:
    session = {"x-session-id": "e2e-memory", "x-memory-user-id": "carol"}
    openai_client = openai.OpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key="anything", default_headers=session
    )
    anthropic_client = anthropic.Anthropic(
        base_url=stack.proxy_url, api_key="anything", default_headers=session
    )

    def stored() -> int:
        response = httpx.get(f"{stack.proxy_url}/v1/sessions/e2e-memory", headers=session)
        return len(response.json().get("messages", [])) if response.status_code == 200 else 0

    stack.provider.requests.clear()
    openai_client.chat.completions.create(
        model="fake-gpt", messages=[{"role": "user", "content": "My name is Carol"}]
    )
    wait_until(lambda: stored() == 2)
    with anthropic_client.messages.stream(
        model="fake-claude", max_tokens=50, messages=[{"role": "user", "content": "Who am I?"}]
    ) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake provider"
    wait_until(lambda: stored() == 4)
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
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == MOCK_TEXT

    def totals() -> dict[str, int]:
        rows = httpx.get(f"{stack.proxy_url}/v1/usage", params={"group_by": "user"}).json()
        return next((row for row in rows["data"] if row["user"] == "usage-e2e"), {})

    wait_until(lambda: totals().get("streams") == 1)
    assert totals()["prompt_tokens"] > 0
    assert totals()["completion_tokens"] > 0
