"""/mcp behind the gate of every route, over raw HTTP: the browser guard's Host, Origin and
content-type rules (the MCP specification asks a server to validate Origin); trusted
callers only; refusals as JSON-RPC errors; POST only (no sessions, no streams)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.config import ClientKey
from memory_proxy.config.security import SecuritySettings
from tests.conftest import ProxyFactory

NO_LITELLM = "http://127.0.0.1:9"
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
ACCEPT = {"accept": "application/json, text/event-stream"}
OURS = ClientKey("sk-ours-" + "o" * 24)
APP_ORIGIN = "http://localhost:3000"


def post(proxy: str, headers: dict[str, str], body: Any = LIST_TOOLS) -> httpx.Response:
    return httpx.post(proxy + "/mcp", json=body, headers={**ACCEPT, **headers})


def refused(answer: httpx.Response, status: int) -> str:
    """The JSON-RPC error an MCP client reads: no id, the HTTP status in its data."""
    assert answer.status_code == status, answer.text
    payload = answer.json()
    assert payload["jsonrpc"] == "2.0" and payload["id"] is None
    assert payload["error"]["data"] == {"status": status}
    message: str = payload["error"]["message"]
    return message


def tools(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [tool["name"] for tool in answer.json()["result"]["tools"]]


def test_a_local_program_lists_the_tools(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        assert len(tools(post(proxy, {}))) == 5


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "http://localhost:3001", "null", "vscode-webview://abc"],
)
def test_a_web_page_of_another_origin_is_refused(run_proxy: ProxyFactory, origin: str) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        assert "refused" in refused(post(proxy, {"origin": origin}), 403)
        # The dashboard's own origin (this very host) calls only what the dashboard calls.
        assert "refused" in refused(post(proxy, {"origin": proxy}), 403)


def test_a_page_without_origin_from_another_site_is_refused(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        answer = post(proxy, {"sec-fetch-site": "cross-site"})
        assert "another site" in refused(answer, 403)


def test_an_allowed_origin_is_served_with_its_cors_headers(run_proxy: ProxyFactory) -> None:
    security = SecuritySettings(allowed_origins=frozenset({APP_ORIGIN}))
    with run_proxy(NO_LITELLM, security=security) as proxy:
        answer = post(proxy, {"origin": APP_ORIGIN})
        assert len(tools(answer)) == 5
        assert answer.headers["access-control-allow-origin"] == APP_ORIGIN


def test_a_foreign_host_is_refused(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        port = proxy.rsplit(":", 1)[1]
        answer = post(proxy, {"host": f"rebind.attacker.example:{port}"})
        assert "does not answer for Host" in refused(answer, 421)


def test_a_body_a_page_could_send_without_preflight_is_refused(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        answer = httpx.post(
            proxy + "/mcp",
            content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
            headers={**ACCEPT, "content-type": "text/plain"},
        )
        assert "content-type: application/json" in refused(answer, 415)


def test_with_client_keys_only_ours_reach_the_tools(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM, client_keys=(OURS,)) as proxy:
        assert len(tools(post(proxy, {"authorization": f"Bearer {OURS.key}"}))) == 5
        assert "API key is required" in refused(post(proxy, {}), 401)
        passing_through = {"authorization": "Bearer sk-litellm-virtual-key-123456"}
        assert "not one of them" in refused(post(proxy, passing_through), 403)
        two_keys = {"authorization": f"Bearer {OURS.key}", "x-api-key": "sk-another-1234567"}
        assert "two different credentials" in refused(post(proxy, two_keys), 401)


def test_an_unusable_user_or_project_id_is_a_400(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        assert "x-memory-user-id" in refused(post(proxy, {"x-memory-user-id": "a b"}), 400)
        assert "x-memory-project" in refused(post(proxy, {"x-memory-project": "../x"}), 400)


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
def test_only_post_is_answered(run_proxy: ProxyFactory, method: str) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        answer = httpx.request(method, proxy + "/mcp", headers=ACCEPT, timeout=5)
        assert "POST only" in refused(answer, 405)
        assert answer.headers["allow"] == "POST"


# In a fresh interpreter: a proxy that starts and answers a local route has no MCP SDK
# loaded; its first /mcp call loads it and is answered.
FIRST_CALL_PROBE = f"""
import asyncio, sys
import httpx
from memory_proxy.app import MemoryProxy
from memory_proxy.config import Settings
from tests.support import lifespan

async def main():
    app = MemoryProxy(Settings())
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await client.get("/v1/memories")
            print("mcp" in sys.modules)
            answer = await client.post("/mcp", json={LIST_TOOLS!r}, headers={ACCEPT!r})
            print("mcp" in sys.modules, answer.status_code, len(answer.json()["result"]["tools"]))

asyncio.run(main())
"""


def test_the_sdk_is_loaded_by_the_first_call_not_at_start() -> None:
    """The MCP SDK is most of a proxy's import time (each `--workers` process, each
    start-proxies) and memory; a proxy whose tools are never called does without it."""
    printed = subprocess.run(
        [sys.executable, "-c", FIRST_CALL_PROBE],
        cwd=Path(__file__).parents[3],  # `tests` importable whatever directory a fixture left
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    assert printed[:2] == ["False", "True 200 5"]
