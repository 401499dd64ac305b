"""Where LiteLLM may send a request, by the name it asks for (identity/model_privacy.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from memory_proxy.config import LiteLLMSettings, MemorySettings, ModelEntry, Settings
from memory_proxy.identity.auth import LOCAL_CALLER
from memory_proxy.identity.identification import Identifier
from memory_proxy.identity.model_privacy import ModelPrivacy
from memory_proxy.identity.supermemory import SupermemoryRouting
from memory_proxy.records.memory import Privacy

NAMES = ["llama-local", "qwen-local", "gpt-4o", "ollama/*", "ollama/cloud-*", "*", "x*", "*y"]
PRIVATE = frozenset({"llama-local", "qwen-local", "ollama/*", "x*"})


def privacy(**aliases: str) -> ModelPrivacy:
    litellm = LiteLLMSettings(
        models=tuple(ModelEntry(name, None) for name in NAMES), aliases=aliases
    )
    memory = MemorySettings(private_models=PRIVATE)
    return ModelPrivacy.from_settings(Settings(litellm=litellm, memory=memory))


@pytest.mark.parametrize(
    ("model", "body", "expected"),
    [
        ("llama-local", {}, "private"),
        ("gpt-4o", {}, "hosted"),
        (None, {}, "hosted"),
        # LiteLLM's pattern router: the most specific wildcard wins over the catch-all "*".
        ("ollama/llama3.1", {}, "private"),
        ("ollama/cloud-gpt-oss", {}, "hosted"),  # a longer, hosted pattern matches first
        ("mistral", {}, "hosted"),  # only "*" matches
        ("xy", {}, "mixed"),  # "x*" and "*y" are equally specific: LiteLLM may take either
        ("xz", {}, "private"),
        # Aliases route to their model_name, before anything else.
        ("local", {}, "private"),
        ("gpt-4o-alias", {}, "hosted"),
        ("llama-local-shadowed", {}, "hosted"),
        # Client-side fallbacks: the request may end up there.
        ("llama-local", {"fallbacks": ["qwen-local"]}, "private"),
        ("llama-local", {"fallbacks": [{"model": "qwen-local", "messages": []}]}, "private"),
        ("llama-local", {"fallbacks": ["gpt-4o"]}, "mixed"),
        ("llama-local", {"fallbacks": [{"messages": []}]}, "mixed"),  # no model: unknown
        ("llama-local", {"fallbacks": "qwen-local"}, "private"),
        ("llama-local", {"fallbacks": 7}, "mixed"),
        ("gpt-4o", {"fallbacks": ["llama-local"]}, "mixed"),
        ("llama-local", None, "private"),  # not JSON: LiteLLM refuses it anyway
    ],
)
def test_where_litellm_may_send_a_request(model: str | None, body: Any, expected: Privacy) -> None:
    routing = privacy(
        local="llama-local", **{"gpt-4o-alias": "gpt-4o", "llama-local-shadowed": "gpt-4o"}
    )
    assert routing.of_request(model, body) == expected


def test_without_private_models_every_request_is_hosted() -> None:
    routing = dataclasses.replace(privacy(), private=frozenset())
    assert routing.of_request("llama-local", {"fallbacks": ["qwen-local"]}) == "hosted"


def test_a_private_name_missing_from_the_model_list_is_still_private() -> None:
    """Memory's own settings may name a model LiteLLM's list doesn't (a proxy run without
    the shared config): the name, or an alias of it, is private as said."""
    routing = ModelPrivacy.from_settings(
        Settings(
            litellm=LiteLLMSettings(models=(), aliases={"local": "llama-x"}),
            memory=MemorySettings(private_models=frozenset({"llama-x"})),
        )
    )
    assert [routing.of_request(name, {}) for name in ("llama-x", "local", "gpt-x")] == [
        "private",
        "private",
        "hosted",
    ]


def test_the_routing_decision_says_it() -> None:
    """`/v1/debug/routing` shows what forwarding decides."""
    identifier = Identifier(Settings(), SupermemoryRouting(frozenset()), privacy())
    for model, expected in (("llama-local", "private"), ("gpt-4o", "hosted")):
        decision = identifier.identify("r", {}, LOCAL_CALLER, {"model": model})
        assert decision.describe()["model_privacy"] == expected
