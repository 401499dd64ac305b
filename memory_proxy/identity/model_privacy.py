"""Where LiteLLM may send a request: to private models only (`memory.private_models`), to
hosted ones only, or to either. Memory keeps a private model's exchanges from hosted ones
by this answer (records.memory.Privacy).

The answer follows LiteLLM's routing of a requested name (LiteLLM 1.106.2's router): a
`model_group_alias` first, then an exact `model_name`, then the wildcard model_names
(`ollama/*`) that match it, the most specific first (longest pattern; LiteLLM keeps the
first of equals, so all of them count here). The request's own `fallbacks` (LiteLLM's
client-side fallbacks) may send it to other models, so they count too. A name LiteLLM
routes by other means (a deployment id, a routing group, a default deployment) is taken
for a hosted model, as is anything unknown: privacy is given by name, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from memory_proxy.config import Settings
from memory_proxy.config.litellm import model_name_in
from memory_proxy.records.memory import Privacy

WILDCARD = "*"
_SPECIAL = "*+?\\^$|()"  # what LiteLLM counts as a pattern's complexity


@dataclass(frozen=True)
class _Pattern:
    """A wildcard model_name as LiteLLM's pattern router matches it: escaped, each `*`
    any text, matched from the start."""

    regex: re.Pattern[str]
    specificity: tuple[int, int]  # LiteLLM's, of the regex: (length, special characters)
    private: bool

    @classmethod
    def of(cls, model_name: str, private: bool) -> _Pattern:
        regex = re.escape(model_name).replace(r"\*", "(.*)")
        specificity = (len(regex), sum(regex.count(c) for c in _SPECIAL))
        return cls(re.compile(regex), specificity, private)


@dataclass(frozen=True)
class ModelPrivacy:
    """The private model_names and what LiteLLM routes by: the model_names, the aliases,
    the wildcard patterns."""

    private: frozenset[str]
    model_names: frozenset[str]
    aliases: dict[str, str]
    patterns: tuple[_Pattern, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelPrivacy:
        private = settings.memory.private_models
        names = frozenset(model.model_name for model in settings.litellm.models)
        patterns = tuple(
            _Pattern.of(name, name in private) for name in sorted(names) if WILDCARD in name
        )
        return cls(private, names, settings.litellm.aliases, patterns)

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
        name = self.aliases.get(requested, requested)
        if name in self.model_names or name in self.private:
            return (name in self.private,)
        matching = [pattern for pattern in self.patterns if pattern.regex.match(name)]
        if not matching:
            return (False,)
        best = max(pattern.specificity for pattern in matching)
        return (pattern.private for pattern in matching if pattern.specificity == best)


def _fallbacks(body: Any) -> list[Any]:
    """The request's client-side fallbacks: a list, or one given alone. One this module
    cannot name (neither a string nor {"model": …}) counts as a hosted model."""
    fallbacks = body.get("fallbacks") if isinstance(body, dict) else None
    if fallbacks is None:
        return []
    return fallbacks if isinstance(fallbacks, list) else [fallbacks]
