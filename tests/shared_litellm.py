"""One real LiteLLM per pytest worker, for the end-to-end tests that need LiteLLM as it is
but neither its start nor its death (tests/supervisor starts its own for those).

A start costs 7-10 s of CPU (its imports), and five test modules and tests/clients each
started one. Here one LiteLLM serves them all: its config is the union of the
models they ask for, each pointing at a slot of one provider router on loopback. A test
mounts its own fakes on the slots for as long as it runs (`SharedLiteLLM.providers`):
LiteLLM's calls reach them through its real provider code, and the fakes record only
that test's requests. Each test's proxy reads the same file as LiteLLM (as a user's
does), with its own proxy sections and its own memory store appended.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from starlette.types import ASGIApp, Receive, Scope, Send

from memory_proxy.config import Settings, load_settings
from tests.litellm_support import RECALL_BUDGET_MS, litellm_process
from tests.support import free_port, serve

MASTER_KEY = "sk-e2e-" + "k" * 32
SHIPPED_CONFIG = Path(__file__).parents[1] / "config.yaml"
SLOTS = ("provider", "local", "hosted", "demo")
# LiteLLM's models besides the shipped `demo` (an echo endpoint, on /demo/v1 of its
# slot), and where each one's provider is: (model, slot, path). `sm-model` is
# Supermemory-routed by its api_base; `llama-local` is the private-model tests' "local"
# provider, `hosted-gpt` their hosted one; `fake-codex` and `fake-claude` tests/clients'.
MODELS = {
    "fake-gpt": ("openai/fake-gpt", "provider", "/v1"),
    "fake-claude": ("anthropic/fake-claude", "provider", ""),
    "sm-model": ("openai/sm-model", "provider", "/supermemory.ai/v1"),
    "fake-codex": ("openai/fake-codex", "provider", "/v1"),
    "fake-embed": ("openai/fake-embed", "provider", "/v1"),
    "llama-local": ("openai/llama-local", "local", "/v1"),
    "hosted-gpt": ("openai/hosted-gpt", "hosted", "/v1"),
}
MODEL_IDS = {"fake-gpt": "fake-gpt-id"}
# A proxy section for the end-to-end tests: which SDK is which user.
SDK_USERS = """\
user_id_mappings:
  header_patterns:
    - header: user-agent
      pattern: "^OpenAI/Python"
      user_id: openai-python
    - header: user-agent
      pattern: "^Anthropic/Python"
      user_id: anthropic-python
"""


def litellm_sections(router_url: str) -> dict[str, Any]:
    """model_list, litellm_settings, router_settings and general_settings of the file."""
    shipped = yaml.safe_load(SHIPPED_CONFIG.read_text())["model_list"]
    demo = next(model for model in shipped if model["model_name"] == "demo")
    assert demo["litellm_params"]["api_base"] == "os.environ/MEMORY_PROXY_DEMO_URL"
    demo["litellm_params"]["api_base"] = f"{router_url}/demo/demo/v1"
    models = [demo]
    for name, (model, slot, path) in MODELS.items():
        params = {
            "model": model,
            "api_key": "provider-key",
            "api_base": f"{router_url}/{slot}{path}",
        }
        entry: dict[str, Any] = {"model_name": name, "litellm_params": params}
        if name in MODEL_IDS:
            entry["model_info"] = {"id": MODEL_IDS[name]}
        models.append(entry)
    return {
        "model_list": models,
        "litellm_settings": {
            "drop_params": True,  # as shipped: Claude Code and Codex send what some drop
            "model_group_settings": {"forward_client_headers_to_llm_api": ["sm-model"]},
        },
        "router_settings": {"model_group_alias": {"fake-alias": "fake-gpt"}},
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
    }


@dataclass
class ProviderRouter:
    """ASGI: `/<slot>/rest` goes to the app mounted on the slot as `/rest`; 404 when none."""

    mounted: dict[str, ASGIApp] = field(default_factory=dict)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        slot, _, rest = scope["path"].removeprefix("/").partition("/")
        app = self.mounted.get(slot)
        if app is None:
            body = f"no provider is mounted on {slot!r} now".encode()
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": body})
            return
        path = "/" + rest
        await app({**scope, "path": path, "raw_path": path.encode()}, receive, send)


@dataclass
class Relay:
    """ASGI: each request passed on to `url` by HTTP, the answer streamed back: the
    shipped `demo` reaches a test's own proxy this way, as it does when shipped."""

    url: str

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
        async with (
            httpx.AsyncClient(base_url=self.url, timeout=60) as client,
            client.stream(scope["method"], scope["path"], headers=headers, content=body) as answer,
        ):
            passed = [(k, v) for k, v in answer.headers.raw if k.lower() != b"content-length"]
            await send(
                {"type": "http.response.start", "status": answer.status_code, "headers": passed}
            )
            async for chunk in answer.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


@dataclass
class SharedLiteLLM:
    """LiteLLM's URL, the router its providers are mounted on, and its config's sections."""

    url: str
    router: ProviderRouter
    sections: dict[str, Any]

    @contextlib.contextmanager
    def providers(self, **apps: ASGIApp) -> Iterator[None]:
        """Mount `apps` by slot name for the block; a slot already taken is an error (two
        tests at once on one worker cannot happen, so it is a fixture left mounted)."""
        assert set(apps) <= set(SLOTS), f"the slots are {SLOTS}"
        taken = set(apps) & set(self.router.mounted)
        assert not taken, f"slots {sorted(taken)} are still mounted"
        self.router.mounted.update(apps)
        try:
            yield
        finally:
            for slot in apps:
                del self.router.mounted[slot]

    def config(self, directory: Path, proxy_sections: str = "") -> Path:
        """LiteLLM's file with the proxy's own sections (YAML text) after it, in `directory`."""
        path = directory / "config.yaml"
        path.write_text(yaml.safe_dump(self.sections, sort_keys=False) + proxy_sections)
        return path

    def settings(
        self,
        config: Path,
        database: Path,
        overrides: dict[str, object] | None = None,
        environ: dict[str, str] | None = None,
    ) -> Settings:
        """The proxy's settings from `config`, in front of this LiteLLM, memory in `database`."""
        return load_settings(
            config,
            environ={"LITELLM_MASTER_KEY": MASTER_KEY, **(environ or {})},
            overrides={
                "proxy.litellm_url": self.url,
                "memory.sqlite_path": str(database),
                "recall.timeout_ms": RECALL_BUDGET_MS,
                **(overrides or {}),
            },
        )


@contextlib.contextmanager
def start_shared_litellm(directory: Path) -> Iterator[SharedLiteLLM]:
    """The router on loopback and LiteLLM in front of it, for the session."""
    router = ProviderRouter()
    with serve(router) as router_url:
        sections = litellm_sections(router_url)
        config = directory / "litellm.yaml"
        config.write_text(yaml.safe_dump(sections, sort_keys=False))
        with litellm_process(config, free_port(), MASTER_KEY) as url:
            yield SharedLiteLLM(url, router, sections)
