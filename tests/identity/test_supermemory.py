from __future__ import annotations

from memory_proxy.config import LiteLLMSettings, ModelEntry
from memory_proxy.identity.supermemory import SupermemoryRouting, configuration_warnings

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
