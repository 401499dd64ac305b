"""`memory.private_models`: the model_names whose exchanges are kept from hosted models,
checked against LiteLLM's sections of the same file.

Nothing is private unless listed. A model's entry cannot prove that it stays on this
machine: an `api_base` on loopback may be an SSH tunnel, a relay (LiteLLM, this proxy) or
one of Ollama's cloud models, and a model made private by default would be sent every
private memory. What LiteLLM may do with a private model's request counts as much as its
name: a fallback to a hosted model would carry the request's recalled memories and
history there, so such a config is refused.
"""

from __future__ import annotations

from memory_proxy.config.litellm import LiteLLMSettings, model_name_in
from memory_proxy.config.parsing import SettingsTree

KEY = "memory.private_models"
# Where LiteLLM reads fallbacks from the file: each a list of {model_name: [fallbacks]}.
FALLBACK_SECTIONS = ("router_settings", "litellm_settings")
FALLBACK_KEYS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")
DEFAULT_FALLBACKS = "default_fallbacks"  # a list of model_names, for every model


def build_private_models(tree: SettingsTree, litellm: LiteLLMSettings) -> frozenset[str]:
    """The listed model_names; a ConfigError for a name that is no model_name, a
    Supermemory-routed model, or a fallback from a private model to another."""
    listed = tree.lookup(KEY)
    if listed is None:
        return frozenset()
    if not isinstance(listed, list):
        raise tree.error(KEY, "expected a list of model_names of model_list")
    known = {model.model_name for model in litellm.models}
    routed = {model.model_name for model in litellm.models if model.supermemory_routed}
    for index, name in enumerate(listed):
        where = f"{KEY}[{index}]"
        if not isinstance(name, str) or name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise tree.error(where, f"{name!r} is no model_name of model_list ({names})")
        if name in routed:
            raise tree.error(
                where, f"{name!r} is Supermemory-routed: its requests go to a hosted service"
            )
    private = frozenset(listed)
    if private:
        _check_fallbacks(tree, private, litellm.aliases)
    return private


def _check_fallbacks(tree: SettingsTree, private: frozenset[str], aliases: dict[str, str]) -> None:
    """No fallback leads from a private model to one that is not: LiteLLM would send the
    failed request, recalled memories and all, to it."""

    def is_private(entry: object) -> bool:
        name = model_name_in(entry)
        return name is not None and aliases.get(name, name) in private

    for section in FALLBACK_SECTIONS:
        for key in FALLBACK_KEYS:
            dotted = f"{section}.{key}"
            for rule in _listed(tree.lookup(dotted)):
                for source, targets in rule.items() if isinstance(rule, dict) else ():
                    hosted = [t for t in _listed(targets) if not is_private(t)]
                    if is_private(source) and hosted:
                        raise tree.error(dotted, _leak(f"private model {source!r}", hosted))
        dotted = f"{section}.{DEFAULT_FALLBACKS}"
        hosted = [t for t in _listed(tree.lookup(dotted)) if not is_private(t)]
        if hosted:
            raise tree.error(dotted, _leak("every model, the private ones too,", hosted))


def _listed(value: object) -> list[object]:
    """A list as it is; one item (a mapping where a list belongs) as a list of it."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _leak(who: str, hosted: list[object]) -> str:
    names = ", ".join(str(model_name_in(t) or t) for t in hosted)
    return (
        f"{who} falls back to {names}, not in {KEY}: a failed request would take its "
        "private memories there. Fall back to private models only, or list these as private"
    )
