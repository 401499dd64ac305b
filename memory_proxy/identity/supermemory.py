"""Supermemory scoping: which models are routed through Supermemory's memory router, and
the headers that carry the user's memory scope to it.

The Supermemory key and scope headers go to Supermemory-routed models only; for every
other model they are removed, whoever set them, so the key never reaches another provider
(upstream_headers.py sets and removes them).
"""

from __future__ import annotations

from dataclasses import dataclass

from memory_proxy.config import LiteLLMSettings

USER_ID_HEADER = b"x-sm-user-id"
API_KEY_HEADER = b"x-supermemory-api-key"
CONVERSATION_HEADER = b"x-sm-conversation-id"
# Whatever a client sends in these families is dropped: only the proxy sets them.
SUPERMEMORY_HEADER_PREFIXES = (b"x-sm-", b"x-supermemory-")


@dataclass(frozen=True)
class SupermemoryRouting:
    routed_models: frozenset[str]
    # model_names with a Supermemory deployment and another one, which LiteLLM may choose.
    mixed_models: frozenset[str] = frozenset()

    @classmethod
    def from_litellm(cls, litellm: LiteLLMSettings) -> SupermemoryRouting:
        supermemory: set[str] = set()
        other: set[str] = set()
        for model in litellm.models:
            (supermemory if model.supermemory_routed else other).add(model.model_name)
        return cls(frozenset(supermemory - other), frozenset(supermemory & other))

    def is_routed(self, requested_model: str | None) -> bool:
        """Exact model_name only: LiteLLM routes by exact name, so `x-20250101` is another
        model (or none) even when `x` is routed."""
        return requested_model in self.routed_models


def configuration_warnings(litellm: LiteLLMSettings, routing: SupermemoryRouting) -> list[str]:
    """Mistakes in the shared config that would silently break or leak Supermemory memory."""
    warnings = []
    if routing.mixed_models:
        warnings.append(
            f"model(s) {', '.join(sorted(routing.mixed_models))} have a Supermemory deployment "
            "and other deployments: LiteLLM may send a request to any of them, so the proxy "
            "sends no Supermemory headers (nor the key) for them. Give the Supermemory "
            "deployment its own model_name."
        )
    missing = sorted(routing.routed_models - litellm.forward_client_headers_models)
    if missing:
        listed = sorted(litellm.forward_client_headers_models | set(missing))
        warnings.append(
            f"Supermemory-routed model(s) {', '.join(missing)} are not listed in "
            "litellm_settings.model_group_settings.forward_client_headers_to_llm_api: LiteLLM "
            "will drop x-sm-user-id and Supermemory memory will not work. Add:\n"
            "  litellm_settings:\n    model_group_settings:\n"
            f"      forward_client_headers_to_llm_api: [{', '.join(listed)}]"
        )
    if litellm.forward_client_headers_to_all:
        warnings.append(
            "general_settings.forward_client_headers_to_llm_api is true: LiteLLM forwards client "
            "headers to every provider. The proxy strips Supermemory headers for other models, "
            "but list only the Supermemory-routed models under "
            "litellm_settings.model_group_settings.forward_client_headers_to_llm_api instead."
        )
    return warnings
