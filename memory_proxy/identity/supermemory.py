"""Supermemory scoping: which models are routed through Supermemory's memory router, and
the headers that carry the user's memory scope to it.

The Supermemory key and scope headers go to Supermemory-routed models only; for every
other model they are removed, whoever set them, so the key never reaches another provider.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memory_proxy.config import LiteLLMSettings

SUPERMEMORY_HOST = "supermemory.ai"
USER_ID_HEADER = b"x-sm-user-id"
API_KEY_HEADER = b"x-supermemory-api-key"
CONVERSATION_HEADER = b"x-sm-conversation-id"
SCOPE_HEADERS = frozenset({USER_ID_HEADER, API_KEY_HEADER, CONVERSATION_HEADER})

# Clients often name a model with a release date appended: claude-sonnet-4-5-20250929.
_DATE_SUFFIX = re.compile(r"-(\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class SupermemoryRouting:
    routed_models: frozenset[str]

    @classmethod
    def from_litellm(cls, litellm: LiteLLMSettings) -> SupermemoryRouting:
        return cls(
            frozenset(
                m.model_name
                for m in litellm.models
                if m.api_base and SUPERMEMORY_HOST in m.api_base
            )
        )

    def is_routed(self, requested_model: str | None) -> bool:
        if not requested_model or not self.routed_models:
            return False
        if requested_model in self.routed_models:
            return True
        return _DATE_SUFFIX.sub("", requested_model) in self.routed_models


def scope_headers(
    headers: list[tuple[bytes, bytes]],
    *,
    routed: bool,
    user_id: str,
    session_id: str | None,
    api_key: str | None,
) -> list[tuple[bytes, bytes]]:
    """Drop client-sent scope headers; for a routed model, add ours."""
    scoped = [(name, value) for name, value in headers if name not in SCOPE_HEADERS]
    if routed:
        scoped.append((USER_ID_HEADER, user_id.encode()))
        if api_key:
            scoped.append((API_KEY_HEADER, api_key.encode()))
        if session_id:
            scoped.append((CONVERSATION_HEADER, session_id.encode()))
    return scoped


def configuration_warnings(litellm: LiteLLMSettings, routing: SupermemoryRouting) -> list[str]:
    """Mistakes in the shared config that would silently break or leak Supermemory memory."""
    warnings = []
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
