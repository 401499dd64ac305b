"""The proxy's decisions as seen from outside: identity, credentials, Supermemory scope,
local endpoints and error shapes."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import LiteLLMSettings, ModelEntry, Settings
from tests.conftest import UPSTREAM_KEY, ProxyFactory
from tests.support import FakeUpstream, serve

ROUTED = LiteLLMSettings(
    models=(
        ModelEntry("sm-model", "https://api.supermemory.ai/v3/https://api.anthropic.com"),
        ModelEntry("plain-model", None),
    ),
    forward_client_headers_models=frozenset({"sm-model"}),
)
SM_KEY = "sm-secret-key-abcdef"


def test_loopback_callers_get_the_upstream_key_instead_of_their_own(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        httpx.post(
            f"{proxy}/v1/messages",
            json={"model": "plain-model"},
            headers={"x-api-key": "dummy", "authorization": "Bearer dummy"},
        )
    received = upstream.requests[0].headers
    assert received["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert "x-api-key" not in received


def test_supermemory_headers_only_for_routed_models(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    sent = {"x-memory-user-id": "alice", "x-session-id": "s-1", "x-sm-user-id": "mallory"}
    with run_proxy(url, litellm=ROUTED, supermemory_api_key=SM_KEY) as proxy:
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "sm-model"}, headers=sent)
        httpx.post(
            f"{proxy}/v1/chat/completions", json={"model": "sm-model-20250929"}, headers=sent
        )
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "plain-model"}, headers=sent)
    routed, dated, plain = (r.headers for r in upstream.requests)
    for headers in (routed, dated):
        assert headers["x-sm-user-id"] == "alice"
        assert headers["x-supermemory-api-key"] == SM_KEY
        assert headers["x-sm-conversation-id"] == "s-1"
    assert not {"x-sm-user-id", "x-supermemory-api-key", "x-sm-conversation-id"} & set(plain)


def test_body_is_forwarded_byte_for_byte_even_when_parsed(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    body = b'{ "model" : "plain-model",\n "messages": [] }'
    with run_proxy(url) as proxy:
        httpx.post(
            f"{proxy}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert upstream.requests[0].body == body


def test_malformed_json_is_forwarded_for_litellm_to_judge_and_counted(
    fake_upstream: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream
    app = MemoryProxy(Settings(litellm_url=url))
    with serve(app) as proxy:
        response = httpx.post(
            f"{proxy}/v1/chat/completions",
            content=b"{not json",
            headers={"content-type": "application/json", "x-session-id": "s1"},
        )
    assert response.status_code == 400  # the upstream's verdict, passed through
    assert response.json()["error"]["message"] == "invalid JSON body"
    assert upstream.requests[0].body == b"{not json"
    assert app.metrics.registry.get_sample_value("memory_proxy_malformed_bodies_total") == 1


def test_a_text_part_that_is_not_text_does_not_break_memory(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """Valid JSON that memory cannot read as text reaches LiteLLM, not a 500 of ours."""
    upstream, url = fake_upstream
    odd = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
    with run_proxy(url) as proxy:
        response = httpx.post(
            f"{proxy}/v1/chat/completions", json=odd, headers={"x-session-id": "s1"}
        )
    assert response.status_code == 200
    assert json.loads(upstream.requests[0].body)["messages"] == odd["messages"]


@pytest.mark.parametrize(
    ("path", "check"),
    [
        ("/v1/chat/completions", lambda e: e["error"]["type"] == "invalid_request_error"),
        (
            "/v1/messages",
            lambda e: e["type"] == "error" and "x-memory-user-id" in e["error"]["message"],
        ),
    ],
)
def test_invalid_user_id_is_a_400_in_the_clients_shape(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, path: str, check
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        response = httpx.post(f"{proxy}{path}", json={}, headers={"x-memory-user-id": "a b"})
    assert response.status_code == 400
    assert check(response.json())
    assert upstream.requests == []


def test_routing_info_reports_the_decision(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url, litellm=ROUTED) as proxy:
        info = httpx.get(
            f"{proxy}/memory-routing/info?model=sm-model",
            headers={"user-agent": "claude-cli/1.0.98 (external, cli)", "x-session-id": "s9"},
        ).json()
        debug = httpx.get(f"{proxy}/v1/debug/routing", headers={"user-agent": "x"}).json()
    assert info["user_id"] == "default-dev"  # run_proxy's settings have no patterns
    assert info["session_id"] == "s9"
    assert info["supermemory"] is True
    assert info["is_default"] is True
    assert debug["supermemory"] is False
    assert debug["matched_pattern"] is None


def test_routing_info_shows_the_matched_pattern(run_proxy: ProxyFactory) -> None:
    from memory_proxy.config import load_settings
    from tests.test_config import REPO_CONFIG

    mappings = load_settings(REPO_CONFIG, environ={}).user_id_mappings
    with run_proxy("http://127.0.0.1:9", user_id_mappings=mappings) as proxy:
        info = httpx.get(
            f"{proxy}/v1/debug/routing",
            headers={"user-agent": "claude-cli/1.0.98 (external, cli)"},
        ).json()
    assert info["user_id"] == "claude-cli"
    assert info["matched_pattern"]["header"] == "user-agent"
    assert info["matched_pattern"]["value"] == "claude-cli/1.0.98 (external, cli)"
    assert info["custom_header_present"] is False


def test_health_follows_litellm_readiness(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        healthy = httpx.get(f"{proxy}/health")
    with run_proxy("http://127.0.0.1:9") as proxy:
        unhealthy = httpx.get(f"{proxy}/health")
    assert healthy.status_code == 200
    assert healthy.json()["status"] == "healthy"
    assert unhealthy.status_code == 503
    assert unhealthy.json()["status"] == "unhealthy"
    assert "not reachable" in unhealthy.json()["reason"]


def test_one_log_line_per_request_without_secrets(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = fake_upstream
    caplog.set_level(logging.INFO, logger="memory_proxy.access")
    with run_proxy(url) as proxy:
        httpx.post(
            f"{proxy}/v1/chat/completions",
            json={"model": "plain-model"},
            headers={"x-memory-user-id": "bob", "authorization": "Bearer sk-client-secret"},
        )
    (record,) = [r for r in caplog.records if r.name == "memory_proxy.access"]
    fields = record.fields
    assert fields["user_id"] == "bob"
    assert fields["model"] == "plain-model"
    assert fields["status"] == 200
    assert "sk-client-secret" not in record.getMessage()
    assert UPSTREAM_KEY not in record.getMessage()


def test_settings_used_by_the_tests_have_no_patterns() -> None:
    assert Settings().user_id_mappings.header_patterns == ()
