"""Requests refused before LiteLLM by their model (identity/model_check.py): never one
LiteLLM would serve."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config import LiteLLMSettings, ModelEntry, load_settings
from memory_proxy.errors import Refusal
from memory_proxy.identity.model_check import ModelCheck

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG, README = ROOT / "config.yaml", ROOT / "README.md"
MODELS = (
    ModelEntry("demo", None, deployment="custom_openai/echo", provider="custom_openai"),
    ModelEntry("gpt-4o", None, None, "OPENAI_API_KEY", "openai/gpt-4o", "openai", "gpt-id-1"),
    ModelEntry("claude", None, None, "MY_CLAUDE_KEY", "anthropic/claude-x", "anthropic"),
    ModelEntry("mixed", None, None, "UNSET_A", "openai/a", "openai"),
    ModelEntry("mixed", None, None, None, "openai/b", "openai"),
)
LITELLM = LiteLLMSettings(
    models=MODELS,
    aliases={"best": "gpt-4o"},
    routing_groups=frozenset({"cheap"}),
    alias_map_names=frozenset({"gpt4"}),
)


def refusal(litellm: LiteLLMSettings, body: Any) -> str | None:
    try:
        ModelCheck(litellm).check(body)
    except Refusal as refused:
        assert refused.status == 400
        return refused.message
    return None


def ask(model: object, **body: object) -> dict[str, object]:
    return {"model": model, "messages": [], **body}


def test_an_unknown_model_is_told_the_models_and_the_closest_one() -> None:
    message = refusal(LITELLM, ask("dmeo"))
    assert message == (
        "model 'dmeo' is not one of LiteLLM's models here; did you mean 'demo'? "
        "(the models: best, claude, demo, gpt-4o, mixed)"
    )
    assert refusal(LITELLM, ask("zzzzzz")) == (
        "model 'zzzzzz' is not one of LiteLLM's models here "
        "(the models: best, claude, demo, gpt-4o, mixed)"
    )


@pytest.mark.parametrize(
    "model",
    [
        "demo",  # a model_name
        "best",  # a model_group_alias
        "cheap",  # a routing group
        "gpt4",  # a name of litellm_settings.model_alias_map
        "openai/gpt-4o",  # a deployment's litellm_params.model
        "gpt-id-1",  # a deployment's model_info.id
        "a2a/my-agent",  # an agent
        "demo,gpt-4o",  # several at once (batch completions)
    ],
)
def test_what_litellm_routes_goes_through(model: str) -> None:
    assert refusal(LITELLM, ask(model)) is None


@pytest.mark.parametrize("key", ["api_key", "api_base", "user_config"])
def test_a_request_bringing_its_own_route_goes_through(key: str) -> None:
    assert refusal(LITELLM, ask("dmeo", **{key: "x"})) is None


@pytest.mark.parametrize(
    "litellm",
    [
        dataclasses.replace(LITELLM, models=(*MODELS, ModelEntry("openai/*", None))),
        dataclasses.replace(LITELLM, models=(*MODELS, ModelEntry("*", None))),
        dataclasses.replace(LITELLM, open_model_list=True),
        LiteLLMSettings(),
    ],
    ids=["a-wildcard", "a-default-deployment", "a-database", "no-model-list"],
)
def test_names_are_not_checked_where_litellm_may_serve_any(litellm: LiteLLMSettings) -> None:
    assert refusal(litellm, ask("dmeo")) is None


@pytest.mark.parametrize("body", [None, [], "text", {}, ask(None), ask(3), ask("")])
def test_a_body_without_a_model_name_is_litellms_to_answer(body: Any) -> None:
    assert refusal(LITELLM, body) is None


KNOWN_ENVIRONMENT = dataclasses.replace(LITELLM, environment=frozenset({"PATH"}))


def test_a_model_whose_key_variable_is_unset_names_it() -> None:
    assert refusal(KNOWN_ENVIRONMENT, ask("gpt-4o")) == (
        "model gpt-4o has no API key: its litellm_params say api_key: "
        "os.environ/OPENAI_API_KEY, and OPENAI_API_KEY is not set in the environment "
        "LiteLLM was started with. Set OPENAI_API_KEY and start again"
    )
    message = refusal(KNOWN_ENVIRONMENT, ask("best"))
    assert message is not None and message.startswith("model best (gpt-4o) has no API key")
    assert "MY_CLAUDE_KEY" in str(refusal(KNOWN_ENVIRONMENT, ask("claude")))


@pytest.mark.parametrize(
    ("litellm", "model"),
    [
        (KNOWN_ENVIRONMENT, "demo"),  # no key variable
        (KNOWN_ENVIRONMENT, "mixed"),  # one of its deployments has a key
        (dataclasses.replace(LITELLM, environment=frozenset({"OPENAI_API_KEY"})), "gpt-4o"),
        # LiteLLM falls back on the provider's own variable when the named one is unset
        (dataclasses.replace(LITELLM, environment=frozenset({"ANTHROPIC_API_KEY"})), "claude"),
        (
            dataclasses.replace(
                KNOWN_ENVIRONMENT, environment_variables=frozenset({"MY_CLAUDE_KEY"})
            ),
            "claude",
        ),
        # what the provider's own client reads besides (the OpenAI SDK, Anthropic's)
        (dataclasses.replace(LITELLM, environment=frozenset({"OPENAI_ADMIN_KEY"})), "gpt-4o"),
        (dataclasses.replace(LITELLM, environment=frozenset({"ANTHROPIC_AUTH_TOKEN"})), "claude"),
        (dataclasses.replace(KNOWN_ENVIRONMENT, keys_elsewhere=True), "gpt-4o"),
        (LITELLM, "gpt-4o"),  # LiteLLM's environment is not known (not started here)
    ],
)
def test_a_key_litellm_may_find_is_not_missing(litellm: LiteLLMSettings, model: str) -> None:
    assert refusal(litellm, ask(model)) is None


def test_a_deployment_with_other_credentials_is_never_refused() -> None:
    azure_ad = ModelEntry("gpt", None, None, "UNSET", "openai/x", "openai", other_credentials=True)
    litellm = LiteLLMSettings(models=(azure_ad,), environment=frozenset())
    assert refusal(litellm, ask("gpt")) is None


def test_a_provider_without_an_api_key_variable_is_never_refused() -> None:
    vertex = ModelEntry("gemini", None, None, "UNSET", "vertex_ai/gemini", "vertex_ai")
    litellm = LiteLLMSettings(models=(vertex,), environment=frozenset())
    assert refusal(litellm, ask("gemini")) is None


routed_names = st.sampled_from(["demo", "best", "cheap", "openai/gpt-4o", "gpt-id-1", "mixed"])


@given(name=st.text(max_size=20), routed=routed_names)
def test_only_names_litellm_cannot_route_are_refused(name: str, routed: str) -> None:
    """Any text: refused only when LiteLLM has no route for it; what it routes never is."""
    known = {"demo", "best", "cheap", "gpt4", "openai/gpt-4o", "gpt-id-1", "gpt-4o", "claude"}
    known.add("mixed")
    refused = refusal(LITELLM, ask(name))
    assert (refused is None) == (
        name in known or not name or "," in name or name.startswith("a2a/")
    )
    assert refusal(LITELLM, ask(routed)) is None
    with_wildcard = dataclasses.replace(LITELLM, models=(*MODELS, ModelEntry("x/*", None)))
    assert refusal(with_wildcard, ask(name)) is None


def test_the_readme_says_what_a_mistyped_demo_is_told() -> None:
    shipped = load_settings(SHIPPED_CONFIG, environ={}).litellm
    message = refusal(shipped, ask("dmeo"))
    readme = " ".join(README.read_text().split())
    assert f"`{message}`" in readme


@given(
    st.lists(st.sampled_from(["demo", "dmeo", "best", "zzzzzz", "gpt-id-1", "nope"]), max_size=8)
)
def test_a_name_asked_again_gets_the_same_answer(models: list[str]) -> None:
    """Each name's verdict is kept after its first request: the same as a fresh check's,
    whatever was asked before."""
    check = ModelCheck(LITELLM)
    for model in models:
        try:
            check.check(ask(model))
            answer = None
        except Refusal as refused:
            answer = refused.message
        assert answer == refusal(LITELLM, ask(model))


def test_names_past_those_remembered_are_still_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("memory_proxy.identity.model_check.MAX_REMEMBERED_MODELS", 2)
    check = ModelCheck(LITELLM)
    for model in ("demo", "best", "gpt-4o"):
        check.check(ask(model))
    with pytest.raises(Refusal):
        check.check(ask("dmeo"))
    with pytest.raises(Refusal):
        check.check(ask("dmeo"))
