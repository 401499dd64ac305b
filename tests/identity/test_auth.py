"""Who gets LiteLLM's key: the rules as pure logic, then through a real proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from memory_proxy.app import MemoryProxy
from memory_proxy.cli import main
from memory_proxy.config import ClientKey, ConfigError, MemorySettings, Settings, load_settings
from memory_proxy.identity.auth import Caller, identify, startup_problem, with_upstream_credentials
from tests.conftest import UPSTREAM_KEY, ProxyFactory
from tests.support import FakeUpstream, lifespan

OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"
KEYS = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
WITH_KEYS = Settings(client_keys=KEYS)
REMOTE = "10.1.2.3"  # only ever a value here: no traffic goes there
NO_MEMORY = MemorySettings(enabled=False)


@pytest.mark.parametrize(
    ("settings", "headers", "host", "expected"),
    [
        (Settings(), {}, "127.0.0.1", Caller(True, False)),
        (Settings(), {"authorization": "Bearer sk-dummy"}, "::1", Caller(True, True)),
        (Settings(), {}, REMOTE, Caller(False, False)),
        (Settings(), {"x-api-key": "sk-virtual"}, REMOTE, Caller(False, True)),
        (WITH_KEYS, {}, "127.0.0.1", Caller(False, False)),
        (WITH_KEYS, {"authorization": f"Bearer {OUR_KEY}"}, REMOTE, Caller(True, True, True)),
        (WITH_KEYS, {"x-api-key": BOUND_KEY}, REMOTE, Caller(True, True, True, "pycharm-ai")),
        (WITH_KEYS, {"x-api-key": "sk-virtual"}, "127.0.0.1", Caller(False, True)),
    ],
)
def test_identify(settings: Settings, headers: dict[str, str], host: str, expected: Caller) -> None:
    assert identify(headers, host, settings) == expected


def test_credentials_are_replaced_only_for_authenticated_callers() -> None:
    sent = [(b"authorization", b"Bearer x"), (b"x-api-key", b"y"), (b"accept", b"*/*")]
    ours = with_upstream_credentials(sent, Caller(True, True, True), "upstream")
    assert ours == [(b"accept", b"*/*"), (b"authorization", b"Bearer upstream")]
    assert with_upstream_credentials(sent, Caller(False, True), "upstream") == sent
    # No upstream key: a local caller's own key is left for LiteLLM, ours never is.
    assert with_upstream_credentials(sent, Caller(True, True), None) == sent
    assert with_upstream_credentials(sent, Caller(True, True, True), None) == [(b"accept", b"*/*")]


def test_listening_beyond_loopback_needs_client_keys() -> None:
    assert startup_problem(Settings(host="127.0.0.1")) is None
    assert startup_problem(Settings(host="0.0.0.0", client_keys=KEYS)) is None
    problem = startup_problem(Settings(host="0.0.0.0"))
    assert problem is not None and "client_keys" in problem


def test_the_cli_refuses_0_0_0_0_without_keys(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without client keys" in result.output


def test_client_keys_in_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("auth:\n  client_keys:\n    - key: os.environ/MY_KEY\n      user_id: me\n")
    settings = load_settings(config, environ={"MY_KEY": OUR_KEY})
    assert settings.client_keys == (ClientKey(OUR_KEY, "me"),)
    assert OUR_KEY in settings.secrets()
    with pytest.raises(ConfigError, match=r"auth.client_keys\[0\].key: expected a secret"):
        load_settings(config, environ={})


def test_through_the_proxy_with_client_keys(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    body = {"model": "m", "messages": []}
    with run_proxy(url, client_keys=KEYS) as proxy:
        anonymous = httpx.post(f"{proxy}/v1/messages", json=body)
        ours = httpx.post(
            f"{proxy}/v1/chat/completions",
            json=body,
            headers={"authorization": f"Bearer {OUR_KEY}"},
        )
        bound = httpx.get(
            f"{proxy}/v1/debug/routing",
            headers={"x-api-key": BOUND_KEY, "x-memory-user-id": "someone-else"},
        )
        virtual = httpx.post(
            f"{proxy}/v1/chat/completions", json=body, headers={"x-api-key": "sk-virtual-key"}
        )
        sessions = httpx.get(f"{proxy}/v1/sessions", headers={"x-api-key": "sk-virtual-key"})
        others = httpx.get(
            f"{proxy}/v1/sessions", params={"user_id": "alice"}, headers={"x-api-key": BOUND_KEY}
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["type"] == "error"  # Anthropic's shape on /v1/messages
    assert ours.status_code == 200
    assert bound.json()["user_id"] == "pycharm-ai"
    assert bound.json()["bound_to_key"] is True
    assert virtual.status_code == 200
    assert sessions.status_code == 401
    assert others.status_code == 403
    first, second = (r.headers for r in upstream.requests)
    assert first["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert OUR_KEY not in str(first)
    assert second["x-api-key"] == "sk-virtual-key"
    assert "authorization" not in second


def test_a_caller_from_another_host_without_a_key_is_refused_whole_app(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    """The app as a remote caller sees it: httpx's ASGI transport sets the client address
    (no traffic leaves the process), the upstream is a real server on loopback."""
    upstream, url = fake_upstream
    settings = Settings(litellm_url=url, upstream_key=UPSTREAM_KEY, memory=NO_MEMORY)
    app = MemoryProxy(settings)

    async def call(headers: dict[str, str]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(REMOTE, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.post("/v1/chat/completions", json={"model": "m"}, headers=headers)

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with lifespan(app):
            return await call({}), await call({"authorization": "Bearer sk-virtual-key"})

    refused, virtual = asyncio.run(scenario())
    assert refused.status_code == 401
    assert refused.json()["error"]["type"] == "authentication_error"
    assert virtual.status_code == 200  # not ours: LiteLLM judges it, untouched
    (forwarded,) = upstream.requests
    assert forwarded.headers["authorization"] == "Bearer sk-virtual-key"
