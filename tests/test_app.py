"""The proxy's decisions as seen from outside: identity, credentials, Supermemory scope,
local endpoints and error shapes."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from memory_proxy.app import MemoryProxy
from memory_proxy.config import ClientKey, LiteLLMSettings, ModelEntry, Settings
from tests.conftest import UPSTREAM_KEY, ProxyFactory
from tests.fake_upstream import FakeUpstream, in_process
from tests.support import lifespan, log_fields, serve, wait_until

ROUTED = LiteLLMSettings(
    models=(
        ModelEntry("sm-model", "https://api.supermemory.ai/v3/https://api.anthropic.com"),
        ModelEntry("plain-model", None),
        # A different model whose name is the routed one's with a date: not routed.
        ModelEntry("sm-model-20250101", None),
    ),
    forward_client_headers_models=frozenset({"sm-model"}),
)
SM_KEY = "sm-secret-key-abcdef"


def test_loopback_callers_get_the_upstream_key_instead_of_their_own(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream_in_process
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
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream_in_process
    sent = {"x-memory-user-id": "alice", "x-session-id": "s-1", "x-sm-user-id": "mallory"}
    with run_proxy(url, litellm=ROUTED, supermemory_api_key=SM_KEY) as proxy:
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "sm-model"}, headers=sent)
        for model in ("sm-model-20250101", "plain-model"):
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": model}, headers=sent)
    routed, dated, plain = (r.headers for r in upstream.requests)
    assert routed["x-sm-user-id"] == "alice"
    assert routed["x-supermemory-api-key"] == SM_KEY
    assert routed["x-sm-conversation-id"] == "s-1"
    for other in (dated, plain):
        assert not {"x-sm-user-id", "x-supermemory-api-key", "x-sm-conversation-id"} & set(other)


def test_client_sent_supermemory_headers_are_dropped_for_every_model(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream_in_process
    sent = {"x-sm-extra": "1", "x-SM-Project": "p", "x-supermemory-anything": "k"}
    with run_proxy(url, litellm=ROUTED, supermemory_api_key=SM_KEY) as proxy:
        for model in ("sm-model", "plain-model"):
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": model}, headers=sent)
    for request in upstream.requests:
        assert not {"x-sm-extra", "x-sm-project", "x-supermemory-anything"} & set(request.headers)


def test_body_is_forwarded_byte_for_byte_even_when_parsed(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream_in_process
    body = b'{ "model" : "plain-model",\n "messages": [] }'
    with run_proxy(url) as proxy:
        httpx.post(
            f"{proxy}/v1/chat/completions",
            content=body,
            headers={"content-type": "application/json"},
        )
    assert upstream.requests[0].body == body


def test_malformed_json_is_forwarded_for_litellm_to_judge_and_counted(
    fake_upstream_in_process: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream_in_process
    app = MemoryProxy(Settings(litellm_url=url), upstream=in_process(upstream))
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
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """Valid JSON that memory cannot read as text reaches LiteLLM, not a 500 of ours."""
    upstream, url = fake_upstream_in_process
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
    fake_upstream_in_process: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    path: str,
    check: Callable[[Any], bool],
) -> None:
    upstream, url = fake_upstream_in_process
    with run_proxy(url) as proxy:
        response = httpx.post(f"{proxy}{path}", json={}, headers={"x-memory-user-id": "a b"})
    assert response.status_code == 400
    assert check(response.json())
    assert upstream.requests == []


def test_routing_info_reports_the_decision(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream_in_process
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
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream_in_process
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
    fake_upstream_in_process: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, url = fake_upstream_in_process
    caplog.set_level(logging.INFO, logger="memory_proxy.access")
    with run_proxy(url) as proxy:
        httpx.post(
            f"{proxy}/v1/chat/completions",
            json={"model": "plain-model"},
            headers={"x-memory-user-id": "bob", "authorization": "Bearer sk-client-secret"},
        )
    (record,) = [r for r in caplog.records if r.name == "memory_proxy.access"]
    fields = log_fields(record)
    assert fields["user_id"] == "bob"
    assert fields["model"] == "plain-model"
    assert fields["status"] == 200
    assert "sk-client-secret" not in record.getMessage()
    assert UPSTREAM_KEY not in record.getMessage()


def test_settings_used_by_the_tests_have_no_patterns() -> None:
    assert Settings().user_id_mappings.header_patterns == ()


# --- trust: who reaches which memory, ids, Supermemory scope, local endpoints ---------------

CLIENT_KEY = "mp-client-key-for-app-tests-0"
BOUND_KEY = "mp-bound-key-for-app-tests-01"
CLIENT_KEYS = (ClientKey(CLIENT_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
FOREIGN_KEY = "sk-litellm-virtual-key-0123456789"
SCOPE_HEADERS = {"x-sm-user-id", "x-supermemory-api-key", "x-sm-conversation-id"}


def _chat(proxy: str, text: str, headers: dict[str, str], model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)


def _stored(proxy: str, user_id: str, session_id: str) -> int:
    response = httpx.get(
        f"{proxy}/v1/sessions/{session_id}",
        params={"user_id": user_id},
        headers={"x-api-key": CLIENT_KEY},
    )
    return len(response.json()["messages"]) if response.status_code == 200 else 0


def test_a_pass_through_key_never_reaches_a_bound_users_memory_or_the_supermemory_key(
    fake_upstream_in_process: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream, url = fake_upstream_in_process
    caplog.set_level(logging.INFO, logger="memory_proxy.access")
    bound = {"x-api-key": BOUND_KEY, "x-session-id": "s1"}
    foreign = {"x-api-key": FOREIGN_KEY, "x-memory-user-id": "pycharm-ai", "x-session-id": "s1"}
    settings = {"client_keys": CLIENT_KEYS, "litellm": ROUTED, "supermemory_api_key": SM_KEY}
    with run_proxy(url, **settings) as proxy:
        assert _chat(proxy, "pycharm's secret", bound, "plain-model").status_code == 200
        wait_until(lambda: _stored(proxy, "pycharm-ai", "s1") == 2)
        assert _chat(proxy, "hello", foreign, "sm-model").status_code == 200
        sent = upstream.requests[1]
        assert [m["content"] for m in json.loads(sent.body)["messages"]] == ["hello"]
        assert sent.headers["x-api-key"] == FOREIGN_KEY  # LiteLLM judges it, unchanged
        assert not SCOPE_HEADERS & set(sent.headers)
        routing = httpx.get(f"{proxy}/v1/debug/routing?model=sm-model", headers=foreign).json()
        own_scope = routing["user_id"]
        wait_until(lambda: _stored(proxy, own_scope, "s1") == 2)  # its own memory works
        assert _stored(proxy, "pycharm-ai", "s1") == 2  # nothing appended to pycharm's
    assert own_scope.startswith("key-") and own_scope != "pycharm-ai"
    assert routing["authenticated"] is False
    assert routing["supermemory"] is False
    assert routing["memory"] is True
    assert FOREIGN_KEY not in caplog.text


def test_an_anonymous_caller_gets_from_the_routing_endpoint_what_the_pipeline_gives(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream_in_process
    with run_proxy(url, client_keys=CLIENT_KEYS) as proxy:
        debug = httpx.get(f"{proxy}/v1/debug/routing", headers={"x-memory-user-id": "alice"})
        chat = _chat(proxy, "hi", {"x-memory-user-id": "alice"}, "plain-model")
    assert debug.status_code == chat.status_code == 401


def test_metrics_answer_unbound_trusted_callers_unless_public(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """Metrics name every user: a key bound to one user may not read them."""
    _, url = fake_upstream_in_process
    with run_proxy(url, client_keys=CLIENT_KEYS) as proxy:
        anonymous = httpx.get(f"{proxy}/metrics")
        foreign = httpx.get(f"{proxy}/metrics", headers={"x-api-key": FOREIGN_KEY})
        bound = httpx.get(f"{proxy}/metrics", headers={"x-api-key": BOUND_KEY})
        ours = httpx.get(f"{proxy}/metrics", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    with run_proxy(url, client_keys=CLIENT_KEYS, metrics_public=True) as proxy:
        public = httpx.get(f"{proxy}/metrics")
        bound_but_public = httpx.get(f"{proxy}/metrics", headers={"x-api-key": BOUND_KEY})
    with run_proxy(url) as proxy:
        loopback = httpx.get(f"{proxy}/metrics")
    assert anonymous.status_code == foreign.status_code == 401
    assert anonymous.json()["error"]["type"] == "authentication_error"
    assert bound.status_code == 403
    assert bound.json()["error"]["type"] == "permission_error"
    assert "pycharm-ai" not in bound.text
    assert bound_but_public.status_code == 200
    for allowed in (ours, public, loopback):
        assert allowed.status_code == 200
        assert "memory_proxy_requests_in_flight" in allowed.text


def test_metrics_refuse_a_caller_from_another_host_without_client_keys(
    fake_upstream_in_process: tuple[FakeUpstream, str],
) -> None:
    _, url = fake_upstream_in_process
    app = MemoryProxy(Settings(litellm_url=url))

    async def scrape() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        # Started and stopped as a server would: the stores it opened are closed after.
        async with (
            lifespan(app),
            httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8764") as client,
        ):
            return await client.get("/metrics")

    assert asyncio.run(scrape()).status_code == 401


def test_health_tells_anyone_the_status_and_only_trusted_callers_the_details(
    fake_upstream_in_process: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream_in_process
    with run_proxy(url, client_keys=CLIENT_KEYS) as proxy:
        anonymous = httpx.get(f"{proxy}/health")
        ours = httpx.get(f"{proxy}/health", headers={"x-api-key": CLIENT_KEY})
    with run_proxy("http://127.0.0.1:9", client_keys=CLIENT_KEYS) as proxy:
        down = httpx.get(f"{proxy}/health")
    assert anonymous.status_code == 200
    assert anonymous.json() == {"status": "healthy"}
    assert ours.json()["litellm_url"] == url
    assert down.status_code == 503
    assert down.json() == {"status": "unhealthy"}


def test_what_start_up_made_is_kept_out_of_full_garbage_collections(
    fake_upstream_in_process: tuple[FakeUpstream, str],
) -> None:
    upstream, url = fake_upstream_in_process
    app = MemoryProxy(Settings(litellm_url=url), upstream=in_process(upstream))
    with serve(app) as proxy:
        assert httpx.get(f"{proxy}/health").status_code == 200  # started
        assert gc.get_freeze_count() > 10_000  # modules, settings, the app
    assert gc.get_freeze_count() == 0  # collectable again once the proxy stopped
