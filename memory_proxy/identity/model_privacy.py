"""Where LiteLLM may send a request: to private models only (`memory.private_models`), to
hosted ones only, or to either. Memory keeps a private model's exchanges from hosted ones
by this answer (records.memory.Privacy).

The answer follows LiteLLM's routing of a requested name (litellm_routing.py). The
request's own `fallbacks` (LiteLLM's client-side fallbacks) may send it to other models, so
they count too. A name LiteLLM
routes by other means (a deployment id, a routing group, a default deployment) is taken
for a hosted model, as is anything unknown: privacy is given by name, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memory_proxy.config import Settings
from memory_proxy.config.litellm import model_name_in
from memory_proxy.identity.litellm_routing import LiteLLMRouting
from memory_proxy.records.memory import Privacy


@dataclass(frozen=True)
class ModelPrivacy:
    """The private model_names and how LiteLLM routes a name to model_names."""

    private: frozenset[str]
    routing: LiteLLMRouting

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelPrivacy:
        return cls(settings.memory.private_models, LiteLLMRouting.of(settings.litellm))

    def of_request(self, model: str | None, body: Any) -> Privacy:
        """Private when every model LiteLLM may send the request to is private, hosted when
        none is (always, without private models: nothing to look up), mixed otherwise."""
        if not self.private or model is None:
            return "hosted"
        kinds = set(self._kinds(model))
        for fallback in _fallbacks(body):
            name = model_name_in(fallback)
            kinds.update(self._kinds(name) if name is not None else (False,))
        if kinds == {True}:
            return "private"
        return "mixed" if True in kinds else "hosted"

    def _kinds(self, requested: str) -> Iterable[bool]:
        """Whether each model_name LiteLLM may route `requested` to is private."""
        names = self.routing.model_names_for(requested)
        if not names:  # a name the model_list doesn't hold: private only when named so
            names = (self.routing.aliases.get(requested, requested),)
        return (name in self.private for name in names)


def _fallbacks(body: Any) -> list[Any]:
    """The request's client-side fallbacks: a list, or one given alone. One this module
    cannot name (neither a string nor {"model": …}) counts as a hosted model."""
    fallbacks = body.get("fallbacks") if isinstance(body, dict) else None
    if fallbacks is None:
        return []
    return fallbacks if isinstance(fallbacks, list) else [fallbacks]
