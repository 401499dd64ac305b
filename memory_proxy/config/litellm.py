"""What the proxy reads from LiteLLM's own sections of the shared file (`model_list`,
`litellm_settings`, `general_settings`, `router_settings`): which models there are, where
they point, and how LiteLLM may route a request between them. LiteLLM checks these
sections; the proxy only refuses shapes it cannot read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from memory_proxy.config.parsing import SettingsTree, environment_variable

SUPERMEMORY_HOST = "supermemory.ai"  # in an api_base: the model is Supermemory-routed
ALIASES_KEY = "router_settings.model_group_alias"


@dataclass(frozen=True)
class ModelEntry:
    """A `model_list` entry, as much of it as the proxy needs."""

    model_name: str
    api_base: str | None
    # NAME when the file says `api_base: os.environ/NAME`: said at start when it is unset.
    api_base_variable: str | None = None

    @property
    def supermemory_routed(self) -> bool:
        return self.api_base is not None and SUPERMEMORY_HOST in self.api_base


@dataclass(frozen=True)
class LiteLLMSettings:
    """What the proxy reads from LiteLLM's own sections of the shared file."""

    models: tuple[ModelEntry, ...] = ()
    forward_client_headers_models: frozenset[str] = frozenset()
    forward_client_headers_to_all: bool = False
    # router_settings.model_group_alias: a name clients may ask for -> the model_name it routes to
    aliases: dict[str, str] = field(default_factory=dict)


def build_litellm(tree: SettingsTree) -> LiteLLMSettings:
    model_list = tree.lookup("model_list") or []
    if not isinstance(model_list, list):
        raise tree.error("model_list", "expected a list of models")
    models = []
    for index, entry in enumerate(model_list):
        where = f"model_list[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("model_name"), str):
            raise tree.error(where, "expected a mapping with a model_name string")
        params = entry.get("litellm_params") or {}
        if not isinstance(params, dict):
            raise tree.error(f"{where}.litellm_params", "expected a mapping")
        raw_base = params.get("api_base")
        api_base = tree.resolve(raw_base)
        models.append(
            ModelEntry(
                entry["model_name"],
                api_base if isinstance(api_base, str) else None,
                environment_variable(raw_base),
            )
        )

    forwarded = tree.lookup(
        "litellm_settings.model_group_settings.forward_client_headers_to_llm_api"
    )
    if forwarded is not None and not isinstance(forwarded, list):
        raise tree.error(
            "litellm_settings.model_group_settings.forward_client_headers_to_llm_api",
            "expected a list of model names",
        )
    return LiteLLMSettings(
        models=tuple(models),
        forward_client_headers_models=frozenset(str(name) for name in forwarded or ()),
        forward_client_headers_to_all=tree.lookup(
            "general_settings.forward_client_headers_to_llm_api"
        )
        is True,
        aliases=_aliases(tree),
    )


def _aliases(tree: SettingsTree) -> dict[str, str]:
    """`{alias: model_name}` or `{alias: {model: model_name, hidden: …}}`, as LiteLLM's
    router takes them."""
    aliases = tree.lookup(ALIASES_KEY) or {}
    if not isinstance(aliases, dict):
        raise tree.error(ALIASES_KEY, "expected a mapping of alias: model_name")
    resolved = {}
    for alias, target in aliases.items():
        name = model_name_in(target)
        if name is None:
            raise tree.error(f"{ALIASES_KEY}.{alias}", "expected a model_name or {model: …}")
        resolved[str(alias)] = name
    return resolved


def model_name_in(entry: Any) -> str | None:
    """A model named as LiteLLM lets a routing setting name one: a string, or a mapping
    with a `model` string (client-side fallbacks, aliases); None for anything else."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, dict) and isinstance(entry.get("model"), str):
        return str(entry["model"])
    return None
