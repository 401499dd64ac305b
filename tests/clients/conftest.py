"""One fake provider and one LiteLLM for the whole package; a fresh proxy per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from starlette.routing import Route, Router

from memory_proxy.api.echo_model import ECHO_PATH, echo
from tests.clients.support import MASTER_KEY, Proxy, litellm_config, memory_proxy
from tests.clients.tool_calling_provider import ToolCallingProvider
from tests.fake_upstream import FakeUpstream
from tests.litellm_support import litellm_process
from tests.support import free_port, serve

REPLY = "Noted, thanks"


@dataclass
class Chain:
    provider: FakeUpstream
    config: Path
    litellm_url: str


@pytest.fixture(scope="package")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """LiteLLM is started once, before any proxy: the shipped `demo` it calls is served by
    an echo endpoint of its own, as the proxy serves it. The provider calls a tool when a
    prompt asks it to (tool_calling_provider.py)."""
    provider = FakeUpstream(reply_text=REPLY)
    directory = tmp_path_factory.mktemp("clients")
    demo = Router(routes=[Route(ECHO_PATH, echo, methods=["POST"])])
    with serve(ToolCallingProvider(provider)) as provider_url, serve(demo) as demo_url:
        config = directory / "config.yaml"
        demo_base = demo_url + ECHO_PATH.removesuffix("/chat/completions")
        config.write_text(yaml.safe_dump(litellm_config(provider_url, demo_base)))
        with litellm_process(config, free_port(), MASTER_KEY) as litellm_url:
            yield Chain(provider, config, litellm_url)


@pytest.fixture
def proxy(chain: Chain, tmp_path: Path) -> Iterator[Proxy]:
    with memory_proxy(chain.config, chain.litellm_url, tmp_path) as running:
        yield running
