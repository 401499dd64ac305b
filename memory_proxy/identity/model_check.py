"""Requests LiteLLM would fail after a round trip, refused at once and saying what to do: a
model nobody configured (the models listed, the closest one suggested), and a model whose
provider key comes from an `os.environ/NAME` that is not set in the environment LiteLLM was
started with (the variable named, never a value).

Never a request LiteLLM would serve. LiteLLM 1.106.2's proxy (route_request in
litellm/proxy/route_llm_request.py) serves more names than the model_names of the file: a
`model_group_alias`, a name of `litellm_settings.model_alias_map`, a routing group, a
deployment's id (`model_info.id`) or its `litellm_params.model`, an `a2a/` agent; any name
when a model_name has a wildcard (it also tries the name with its provider guessed:
`gpt-4o` reaching `openai/*`), with `pass_through_all_models`, or when models and key
aliases live in its database; any request that brings its own `api_key`, `api_base` or
`user_config`, or names several models at once. Names are checked only where none of that
can apply. A key is missing only when the provider has no variable of its own to fall back
on that is set (config/litellm_known.py, from the pinned LiteLLM), no other credential,
secret manager or key setting could give one, and only when the proxy knows LiteLLM's
environment (start-proxies started it).
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from typing import Any

from memory_proxy.config import LiteLLMSettings, ModelEntry
from memory_proxy.config.litellm_known import PROVIDER_KEYS
from memory_proxy.errors import Refusal
from memory_proxy.identity.litellm_routing import LiteLLMRouting

# A body with one of these is routed by LiteLLM whatever its model.
ROUTED_BY_BODY = ("api_key", "api_base", "user_config", "router_settings_override")
_ROUTED_BY_BODY = frozenset(ROUTED_BY_BODY)
MAX_REMEMBERED_MODELS = 1024
AGENT_PREFIX = "a2a/"
SUGGESTION_SIMILARITY = 0.6  # difflib's default: `dmeo` finds `demo`


class ModelCheck:
    """Built once from LiteLLM's sections; `check` runs on every LLM call."""

    def __init__(self, litellm: LiteLLMSettings) -> None:
        self._routing = LiteLLMRouting.of(litellm)
        self._offered = sorted(self._routing.model_names | set(litellm.aliases))
        self._checks_names = bool(self._offered) and not (
            litellm.open_model_list or self._routing.patterns
        )
        self._also_routed = frozenset(
            {
                *litellm.routing_groups,
                *litellm.alias_map_names,
                *(model.deployment for model in litellm.models if model.deployment),
                *(model.model_id for model in litellm.models if model.model_id),
            }
        )
        self._missing_keys = _missing_keys(litellm)
        self.active = self._checks_names or bool(self._missing_keys)
        # model -> the refusal's message, or None: asked once per name (bounded, as the
        # names are the clients').
        self._verdicts: dict[str, str | None] = {}

    def check(self, body: Any) -> None:
        """Raises a `Refusal` (400) for a request LiteLLM would certainly fail by its model."""
        if not self.active or not isinstance(body, dict):
            return
        model = body.get("model")
        if not isinstance(model, str) or not model or "," in model:
            return
        if not _ROUTED_BY_BODY.isdisjoint(body):
            return
        try:
            refusal = self._verdicts[model]
        except KeyError:
            refusal = self._verdict(model)
            if len(self._verdicts) < MAX_REMEMBERED_MODELS:
                self._verdicts[model] = refusal
        if refusal is not None:
            raise Refusal(400, refusal)

    def _verdict(self, model: str) -> str | None:
        """Why a request for `model` is refused, or None when it goes to LiteLLM."""
        names = self._routing.model_names_for(model)
        if names:
            missing = [self._missing_keys.get(name) for name in names]
            if all(missing):
                return _no_key(model, names[0], str(missing[0]))
        elif self._checks_names and not self._routed_otherwise(model):
            return self._unknown(model)
        return None

    def _routed_otherwise(self, model: str) -> bool:
        return model in self._also_routed or model.startswith(AGENT_PREFIX)

    def _unknown(self, model: str) -> str:
        close = difflib.get_close_matches(model, self._offered, n=1, cutoff=SUGGESTION_SIMILARITY)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (
            f"model {model!r} is not one of LiteLLM's models here{hint} "
            f"(the models: {', '.join(self._offered)})"
        )


def _no_key(model: str, model_name: str, variable: str) -> str:
    named = model if model == model_name else f"{model} ({model_name})"
    return (
        f"model {named} has no API key: its litellm_params say api_key: "
        f"os.environ/{variable}, and {variable} is not set in the environment LiteLLM was "
        f"started with. Set {variable} and start again"
    )


def _missing_keys(litellm: LiteLLMSettings) -> dict[str, str]:
    """model_name -> the unset variable its key comes from, for the model_names none of
    whose entries can find a key."""
    if litellm.environment is None or litellm.keys_elsewhere:
        return {}
    present = litellm.environment | litellm.environment_variables
    entries: defaultdict[str, list[ModelEntry]] = defaultdict(list)
    for model in litellm.models:
        entries[model.model_name].append(model)
    missing = {}
    for name, models in entries.items():
        variables = [_missing_key(model, present) for model in models]
        if all(variables):
            missing[name] = str(variables[0])
    return missing


def _missing_key(model: ModelEntry, present: frozenset[str]) -> str | None:
    """The variable the entry's key should come from, when neither it nor any of its
    provider's own may be set: a provider's client reads more than LiteLLM says
    (`OPENAI_ADMIN_KEY`, `ANTHROPIC_AUTH_TOKEN`), so any key or token under its prefix
    counts."""
    variable = model.api_key_variable
    fallbacks = PROVIDER_KEYS.get(model.provider or "")
    if variable is None or fallbacks is None or model.other_credentials:
        return None
    prefixes = tuple(name.removesuffix("API_KEY") for name in fallbacks)
    if variable in present or any(
        name.startswith(prefixes) and ("KEY" in name or "TOKEN" in name) for name in present
    ):
        return None
    return variable
