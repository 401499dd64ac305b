"""What the proxy reads from LiteLLM's own sections of the shared file (`model_list`,
`litellm_settings`, `general_settings`, `router_settings`): which models there are, where
they point, and how LiteLLM may route a request between them. LiteLLM checks these
sections; the proxy only refuses shapes it cannot read, and warns of a `litellm_params` key
that the pinned LiteLLM does not know but looks like one it does (`api_bse`)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from memory_proxy.config.litellm_known import LITELLM_PARAMS, LITELLM_VERSION
from memory_proxy.config.parsing import SettingsTree, environment_variable

SUPERMEMORY_HOST = "supermemory.ai"  # in an api_base: the model is Supermemory-routed
ALIASES_KEY = "router_settings.model_group_alias"
# How alike an unknown litellm_params key must be to a known one to be called a typo: any
# other key may be a provider's own parameter, which LiteLLM passes on.
PARAM_TYPO_SIMILARITY = 0.8
# Words of the litellm_params that may authenticate a deployment besides its api_key: an
# Azure AD token, a workload identity, a credential_list entry, AWS or Google credentials.
CREDENTIAL_WORDS = ("key", "token", "credential", "identity", "secret", "password", "auth")


@dataclass(frozen=True)
class ModelEntry:
    """A `model_list` entry, as much of it as the proxy needs."""

    model_name: str
    api_base: str | None
    # NAME when the file says `api_base: os.environ/NAME`: said at start when it is unset.
    api_base_variable: str | None = None
    # NAME when the file says `api_key: os.environ/NAME`
    api_key_variable: str | None = None
    # litellm_params.model (`openai/gpt-4o`): LiteLLM routes this name to the entry too
    deployment: str | None = None
    provider: str | None = None  # custom_llm_provider, or the deployment's prefix
    model_id: str | None = None  # model_info.id: LiteLLM routes this name to the entry too
    other_credentials: bool = False  # litellm_params that may authenticate but api_key

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
    routing_groups: frozenset[str] = frozenset()  # router_settings.routing_groups' names
    # litellm_settings.model_alias_map's names: renamed by LiteLLM before it routes them
    alias_map_names: frozenset[str] = frozenset()
    # LiteLLM may serve names that are not in the file: models kept in its database, or
    # router_settings.router_general_settings.pass_through_all_models.
    open_model_list: bool = False
    # Where LiteLLM may find a provider key other than in the environment: a secret manager
    # (general_settings.key_management_system), a key set in litellm_settings, the
    # client's own (forward_llm_provider_auth_headers).
    keys_elsewhere: bool = False
    environment_variables: frozenset[str] = frozenset()  # what its section sets for LiteLLM
    # The names of the variables set in the environment LiteLLM was started with; None when
    # the proxy does not know it (start-proxies does: it starts LiteLLM).
    environment: frozenset[str] | None = None


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
        deployment = _text(params.get("model"))
        info = entry.get("model_info")
        models.append(
            ModelEntry(
                entry["model_name"],
                api_base if isinstance(api_base, str) else None,
                environment_variable(raw_base),
                environment_variable(params.get("api_key")),
                deployment,
                _text(params.get("custom_llm_provider"))
                or (deployment.partition("/")[0] if deployment and "/" in deployment else None),
                _text(info.get("id")) if isinstance(info, dict) else None,
                any(
                    word in str(name)
                    for name in params
                    if name != "api_key"
                    for word in CREDENTIAL_WORDS
                ),
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
        routing_groups=_routing_groups(tree),
        alias_map_names=frozenset(
            str(name) for name in tree.lookup("litellm_settings.model_alias_map") or {}
        ),
        open_model_list=bool(
            tree.lookup("general_settings.database_url")
            or tree.lookup("general_settings.store_model_in_db")
            or tree.environ.get("DATABASE_URL")
            or tree.lookup("router_settings.router_general_settings.pass_through_all_models")
        ),
        keys_elsewhere=bool(
            tree.lookup("general_settings.key_management_system")
            or tree.lookup("general_settings.forward_llm_provider_auth_headers")
            or tree.lookup("litellm_settings.forward_llm_provider_auth_headers")
        )
        or any(_is_key_setting(key) for key in tree.lookup("litellm_settings") or {}),
        environment_variables=frozenset(
            str(name) for name in tree.lookup("environment_variables") or {}
        ),
    )


def unknown_litellm_params(tree: SettingsTree) -> list[str]:
    """A warning for each `litellm_params` key of model_list that the pinned LiteLLM does
    not know but that looks like one it does: LiteLLM starts with it and fails later."""
    warnings = []
    model_list = tree.file.get("model_list")
    for index, entry in enumerate(model_list if isinstance(model_list, list) else ()):
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        for key in params if isinstance(params, dict) else ():
            name = str(key)
            if name in LITELLM_PARAMS:
                continue
            close = difflib.get_close_matches(
                name, sorted(LITELLM_PARAMS), n=1, cutoff=PARAM_TYPO_SIMILARITY
            )
            if close:
                warnings.append(
                    f"{tree.file_label}: model_list[{index}].litellm_params.{name}: not a "
                    f"parameter of LiteLLM {LITELLM_VERSION} (did you mean {close[0]}?)"
                )
    return warnings


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _is_key_setting(name: object) -> bool:
    """A litellm_settings key that gives LiteLLM a provider key (api_key, openai_key...)."""
    return isinstance(name, str) and name.endswith("_key")


def _routing_groups(tree: SettingsTree) -> frozenset[str]:
    groups = tree.lookup("router_settings.routing_groups") or []
    return frozenset(
        str(group["group_name"])
        for group in (groups if isinstance(groups, list) else ())
        if isinstance(group, dict) and group.get("group_name")
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
