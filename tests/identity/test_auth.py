"""Who gets LiteLLM's key: the rules as pure logic, then through a real proxy."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from memory_proxy.app import MemoryProxy
from memory_proxy.cli.main import main
from memory_proxy.config import (
    ClientKey,
    ConfigError,
    MemorySettings,
    Settings,
    UserIdMappings,
    load_settings,
)
from memory_proxy.identity.auth import (
    CONFLICTING_KEYS,
    LOCAL_CALLER,
    NO_KEY,
    Caller,
    Trust,
    identify,
    pass_through_user_id,
    startup_problem,
)
from memory_proxy.identity.client_detection import PASS_THROUGH_PREFIX, VALID_ID
from tests.conftest import UPSTREAM_KEY, ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import lifespan

OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"
KEYS = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
WITH_KEYS = Settings(client_keys=KEYS)
REMOTE = "10.1.2.3"  # only ever a value here: no traffic goes there
NO_MEMORY = MemorySettings(enabled=False)


VIRTUAL = pass_through_user_id(b"sk-virtual")
PASSING_THROUGH = Caller(Trust.PASS_THROUGH, VIRTUAL)
NO_KEY_CALLER = Caller(Trust.REFUSED, refusal=NO_KEY)


@pytest.mark.parametrize(
    ("settings", "headers", "host", "expected"),
    [
        (Settings(), [], "127.0.0.1", LOCAL_CALLER),
        (Settings(), [("authorization", "Bearer sk-dummy")], "::1", LOCAL_CALLER),
        (Settings(), [], REMOTE, NO_KEY_CALLER),
        (Settings(), [("x-api-key", "sk-virtual")], REMOTE, PASSING_THROUGH),
        (WITH_KEYS, [], "127.0.0.1", NO_KEY_CALLER),
        (WITH_KEYS, [("authorization", f"Bearer {OUR_KEY}")], REMOTE, Caller(Trust.CLIENT_KEY)),
        (WITH_KEYS, [("x-api-key", BOUND_KEY)], REMOTE, Caller(Trust.BOUND_KEY, "pycharm-ai")),
        (WITH_KEYS, [("x-api-key", "sk-virtual")], "::1", PASSING_THROUGH),
        (
            WITH_KEYS,
            [("authorization", "Bearer sk-virtual")],
            REMOTE,
            PASSING_THROUGH,
        ),
        (
            WITH_KEYS,
            [("api-key", OUR_KEY), ("x-api-key", OUR_KEY)],
            REMOTE,
            Caller(Trust.CLIENT_KEY),
        ),
        (
            WITH_KEYS,
            [("x-api-key", OUR_KEY), ("x-api-key", "sk-virtual")],
            REMOTE,
            Caller(Trust.REFUSED, refusal=CONFLICTING_KEYS),
        ),
        (WITH_KEYS, [("authorization", "Bearer ")], REMOTE, NO_KEY_CALLER),
        # Without client keys, a local caller's credentials decide nothing: no conflict.
        (
            Settings(),
            [("x-api-key", "a"), ("authorization", "Bearer b")],
            "::1",
            LOCAL_CALLER,
        ),
    ],
)
def test_identify(
    settings: Settings, headers: list[tuple[str, str]], host: str, expected: Caller
) -> None:
    raw = [(name.encode(), value.encode()) for name, value in headers]
    assert identify(raw, host, settings.client_keys) == expected


def test_a_pass_through_user_id_is_its_keys_alone() -> None:
    user_id = pass_through_user_id(b"sk-virtual")
    assert user_id.startswith(PASS_THROUGH_PREFIX) and VALID_ID.match(user_id)
    assert user_id == pass_through_user_id(b"sk-virtual")
    assert user_id != pass_through_user_id(b"sk-virtuaL")
    assert "sk-virtual" not in user_id


def test_configured_user_ids_may_not_use_the_pass_through_namespace() -> None:
    reserved = ClientKey(BOUND_KEY, "key-0123456789abcdef")
    problem = startup_problem(Settings(client_keys=(reserved,)))
    assert problem is not None and "auth.client_keys[0].user_id" in problem
    default = Settings(user_id_mappings=UserIdMappings(default_user_id="key-x"))
    assert "default_user_id" in (startup_problem(default) or "")


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
        async with httpx.AsyncClient(
            transport=transport, base_url="http://127.0.0.1:8764"
        ) as client:
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


@pytest.mark.parametrize(
    "credentials",
    [
        [("authorization", "Bearer sk-wrong-key"), ("x-api-key", OUR_KEY)],
        [("authorization", f"Bearer {OUR_KEY}"), ("authorization", "Bearer sk-wrong-key")],
        [("authorization", "Bearer sk-wrong-key"), ("authorization", f"Bearer {OUR_KEY}")],
        [("x-api-key", OUR_KEY), ("x-api-key", "sk-wrong-key")],
        [("authorization", f"Bearer {OUR_KEY}"), ("x-litellm-api-key", "sk-virtual-key")],
    ],
)
def test_conflicting_credentials_are_refused_and_never_forwarded(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    credentials: list[tuple[str, str]],
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, client_keys=KEYS) as proxy:
        response = httpx.post(f"{proxy}/v1/chat/completions", json={}, headers=credentials)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert upstream.requests == []


@pytest.mark.parametrize(
    "sent",
    [
        [("x-api-key", "sk-virtual-key"), ("x-custom", OUR_KEY)],
        [("x-api-key", "sk-virtual-key"), ("x-forwarded-key", f"Bearer {BOUND_KEY}")],
        [("x-litellm-api-key", OUR_KEY)],
        [("api-key", OUR_KEY), ("x-note", f"bearer {OUR_KEY}")],
        [("authorization", f"Bearer {OUR_KEY}"), ("x-api-key", OUR_KEY)],  # the same key twice
        [("authorization", f"Bearer {OUR_KEY}"), ("authorization", f"Bearer {OUR_KEY}")],
    ],
)
def test_no_header_carrying_a_client_key_leaves_the_proxy(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    sent: list[tuple[str, str]],
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url, client_keys=KEYS) as proxy:
        response = httpx.post(f"{proxy}/v1/chat/completions", json={}, headers=sent)
    assert response.status_code == 200
    (forwarded,) = upstream.requests
    for value in forwarded.headers.values():
        assert OUR_KEY not in value and BOUND_KEY not in value
