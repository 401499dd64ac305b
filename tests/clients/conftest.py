"""The worker's shared LiteLLM (tests/shared_litellm.py) in front of a fake provider of the
test's own; a fresh proxy per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from starlette.routing import Route, Router

from memory_proxy.api.echo_model import ECHO_PATH, echo
from tests.clients.support import Proxy, clients_config, memory_proxy
from tests.clients.tool_calling_provider import ToolCallingProvider
from tests.fake_upstream import FakeUpstream
from tests.shared_litellm import SharedLiteLLM

REPLY = "Noted, thanks"


@dataclass
class Chain:
    provider: FakeUpstream
    config: Path
    litellm_url: str


@pytest.fixture
def chain(shared_litellm: SharedLiteLLM, tmp_path: Path) -> Iterator[Chain]:
    """The shipped `demo` LiteLLM calls is served by an echo endpoint of its own, as the
    proxy serves it. The provider calls a tool when a prompt asks it to
    (tool_calling_provider.py)."""
    provider = FakeUpstream(reply_text=REPLY)
    demo = Router(routes=[Route(ECHO_PATH, echo, methods=["POST"])])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(clients_config(shared_litellm.sections)))
    with shared_litellm.providers(provider=ToolCallingProvider(provider), demo=demo):
        yield Chain(provider, config, shared_litellm.url)


@pytest.fixture
def proxy(chain: Chain, tmp_path: Path) -> Iterator[Proxy]:
    with memory_proxy(chain.config, chain.litellm_url, tmp_path) as running:
        yield running
