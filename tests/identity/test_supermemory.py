from __future__ import annotations

from memory_proxy.config import LiteLLMSettings, ModelEntry
from memory_proxy.identity.supermemory import (
    SupermemoryRouting,
    configuration_warnings,
    scope_headers,
)

LITELLM = LiteLLMSettings(
    models=(
        ModelEntry("claude-sonnet-4.5", "https://api.supermemory.ai/v3/https://api.anthropic.com"),
        ModelEntry("gpt-4o", None),
        ModelEntry("local", "http://127.0.0.1:1234/v1"),
    ),
    forward_client_headers_models=frozenset({"claude-sonnet-4.5"}),
)
ROUTING = SupermemoryRouting.from_litellm(LITELLM)


def test_routed_models_come_from_api_base() -> None:
    assert ROUTING.routed_models == {"claude-sonnet-4.5"}


def test_model_names_match_exactly() -> None:
    """LiteLLM routes by exact model_name: a dated name is another model (or none)."""
    assert ROUTING.is_routed("claude-sonnet-4.5")
    assert not ROUTING.is_routed("claude-sonnet-4.5-20250929")
    assert not ROUTING.is_routed("claude-sonnet-4.5-2025-09-29")
    assert not ROUTING.is_routed("claude-sonnet-4.5-mini")
    assert not ROUTING.is_routed("gpt-4o")
    assert not ROUTING.is_routed(None)


CLIENT_SENT = [
    (b"x-sm-user-id", b"mallory"),
    (b"x-supermemory-api-key", b"stolen"),
    (b"x-sm-conversation-id", b"c"),
    (b"x-sm-project", b"p"),
    (b"x-supermemory-anything", b"a"),
    (b"accept", b"*/*"),
]


def test_client_sent_supermemory_headers_are_dropped_for_other_models() -> None:
    assert scope_headers(CLIENT_SENT, routed=False, user_id="u", session_id="s", api_key="k") == [
        (b"accept", b"*/*")
    ]


def test_routed_models_get_our_scope_headers_not_the_clients() -> None:
    sent = CLIENT_SENT
    headers = scope_headers(sent, routed=True, user_id="alice", session_id="s1", api_key="sm-key")
    assert dict(headers) == {
        b"accept": b"*/*",
        b"x-sm-user-id": b"alice",
        b"x-supermemory-api-key": b"sm-key",
        b"x-sm-conversation-id": b"s1",
    }


def test_no_key_and_no_session_means_only_the_user_scope() -> None:
    headers = scope_headers([], routed=True, user_id="alice", session_id=None, api_key=None)
    assert headers == [(b"x-sm-user-id", b"alice")]


def test_warns_when_litellm_would_drop_the_headers() -> None:
    litellm = LiteLLMSettings(models=LITELLM.models)
    (warning,) = configuration_warnings(litellm, ROUTING)
    assert "claude-sonnet-4.5" in warning
    assert "forward_client_headers_to_llm_api: [claude-sonnet-4.5]" in warning


def test_warns_when_headers_go_to_every_provider() -> None:
    litellm = LiteLLMSettings(
        models=LITELLM.models,
        forward_client_headers_models=LITELLM.forward_client_headers_models,
        forward_client_headers_to_all=True,
    )
    (warning,) = configuration_warnings(litellm, ROUTING)
    assert "every provider" in warning


def test_a_model_name_with_another_deployment_is_not_routed_and_warned_about() -> None:
    """LiteLLM balances one model_name over its deployments: the key would reach the other."""
    litellm = LiteLLMSettings(
        models=(*LITELLM.models, ModelEntry("claude-sonnet-4.5", "https://api.anthropic.com")),
        forward_client_headers_models=LITELLM.forward_client_headers_models,
    )
    routing = SupermemoryRouting.from_litellm(litellm)
    assert not routing.is_routed("claude-sonnet-4.5")
    (warning,) = configuration_warnings(litellm, routing)
    assert "claude-sonnet-4.5" in warning and "other deployments" in warning


def test_no_warning_for_a_correct_config() -> None:
    assert configuration_warnings(LITELLM, ROUTING) == []
