"""`memory.private_models` (config/private_models.py): checked against LiteLLM's sections,
every mistake an error naming the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_proxy.config import ConfigError, load_settings

MODELS = """\
model_list:
  - model_name: llama-local
    litellm_params: {model: ollama_chat/llama3.1, api_base: "http://127.0.0.1:11434"}
  - model_name: qwen-local
    litellm_params: {model: ollama_chat/qwen3, api_base: "http://127.0.0.1:11434"}
  - model_name: gpt-4o
    litellm_params: {model: openai/gpt-4o}
  - model_name: sm-claude
    litellm_params:
      model: anthropic/claude-sonnet-4-5
      api_base: https://api.supermemory.ai/v3/https://api.anthropic.com
"""


def load(tmp_path: Path, text: str) -> frozenset[str]:
    path = tmp_path / "config.yaml"
    path.write_text(MODELS + text)
    return load_settings(path, environ={}).memory.private_models


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as error:
        load(tmp_path, text)
    return str(error.value)


def test_listed_model_names_are_private_and_nothing_else_is(tmp_path: Path) -> None:
    assert load(tmp_path, "memory:\n  private_models: [llama-local, qwen-local]\n") == {
        "llama-local",
        "qwen-local",
    }
    assert load(tmp_path, "memory:\n  enabled: true\n") == frozenset()  # loopback or not


def test_a_name_that_is_no_model_name_is_an_error_naming_key_and_file(tmp_path: Path) -> None:
    message = refused(tmp_path, "memory:\n  private_models: [llama-local, lama-local]\n")
    assert message.startswith(f"{tmp_path / 'config.yaml'}: memory.private_models[1]: ")
    assert "'lama-local' is no model_name of model_list" in message
    assert "llama-local" in message  # the names there are, to spot the typo


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ("memory:\n  private_models: llama-local\n", "memory.private_models", "a list"),
        ("memory:\n  private_models: [7]\n", "memory.private_models[0]", "no model_name"),
        (
            "memory:\n  private_models: [sm-claude]\n",
            "memory.private_models[0]",
            "Supermemory-routed",
        ),
    ],
)
def test_malformed_lists_are_errors(tmp_path: Path, text: str, key: str, says: str) -> None:
    message = refused(tmp_path, text)
    assert f": {key}: " in message
    assert says in message


@pytest.mark.parametrize(
    ("section", "key", "rule"),
    [
        ("router_settings", "fallbacks", "[{llama-local: [gpt-4o]}]"),
        ("litellm_settings", "fallbacks", "[{llama-local: [qwen-local, gpt-4o]}]"),
        ("router_settings", "context_window_fallbacks", "[{llama-local: [gpt-4o]}]"),
        ("litellm_settings", "content_policy_fallbacks", "[{llama-local: [gpt-4o]}]"),
        ("router_settings", "default_fallbacks", "[gpt-4o]"),
        ("router_settings", "fallbacks", "{llama-local: [gpt-4o]}"),  # not even a list
        ("router_settings", "fallbacks", "[{local: [gpt-4o]}]"),  # through an alias
    ],
)
def test_a_fallback_from_a_private_model_to_a_hosted_one_is_refused(
    tmp_path: Path, section: str, key: str, rule: str
) -> None:
    """LiteLLM would send the failed request, recalled memories and all, to gpt-4o."""
    aliases = "  model_group_alias: {local: llama-local}\n"
    text = f"memory:\n  private_models: [llama-local, qwen-local]\n{section}:\n  {key}: {rule}\n"
    if section == "router_settings":
        text += aliases
    else:
        text += f"router_settings:\n{aliases}"
    message = refused(tmp_path, text)
    assert f"config.yaml: {section}.{key}: " in message
    assert "gpt-4o" in message and "memory.private_models" in message


def test_fallbacks_among_private_models_and_from_hosted_ones_are_fine(tmp_path: Path) -> None:
    text = (
        "memory:\n  private_models: [llama-local, qwen-local]\n"
        "router_settings:\n"
        "  fallbacks: [{llama-local: [qwen-local, {model: local}]}, {gpt-4o: [llama-local]}]\n"
        "  model_group_alias: {local: {model: qwen-local, hidden: true}}\n"
    )
    assert load(tmp_path, text) == {"llama-local", "qwen-local"}


def test_without_private_models_fallbacks_are_litellms_business(tmp_path: Path) -> None:
    assert load(tmp_path, "router_settings:\n  default_fallbacks: [gpt-4o]\n") == frozenset()


def test_aliases_are_read_for_routing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        MODELS + "router_settings:\n  model_group_alias: {a: llama-local, b: {model: gpt-4o}}\n"
    )
    assert load_settings(path, environ={}).litellm.aliases == {"a": "llama-local", "b": "gpt-4o"}
    path.write_text(MODELS + "router_settings:\n  model_group_alias: {a: [llama-local]}\n")
    with pytest.raises(ConfigError, match=r"router_settings\.model_group_alias\.a: "):
        load_settings(path, environ={})
