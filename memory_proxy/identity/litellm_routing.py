"""Which model_names of model_list LiteLLM routes a requested name to, as LiteLLM 1.106.2's
router does: a `model_group_alias` first, then an exact `model_name`, then the wildcard
model_names (`ollama/*`) that match it, the most specific first (longest pattern; LiteLLM
keeps the first of equals, so all of them count here). Private models (model_privacy.py)
and the up-front model checks (model_check.py) both follow it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memory_proxy.config import LiteLLMSettings

WILDCARD = "*"
_SPECIAL = "*+?\\^$|()"  # what LiteLLM counts as a pattern's complexity


@dataclass(frozen=True)
class _Pattern:
    """A wildcard model_name as LiteLLM's pattern router matches it: escaped, each `*`
    any text, matched from the start."""

    model_name: str
    regex: re.Pattern[str]
    specificity: tuple[int, int]  # LiteLLM's, of the regex: (length, special characters)

    @classmethod
    def of(cls, model_name: str) -> _Pattern:
        regex = re.escape(model_name).replace(r"\*", "(.*)")
        specificity = (len(regex), sum(regex.count(c) for c in _SPECIAL))
        return cls(model_name, re.compile(regex), specificity)


@dataclass(frozen=True)
class LiteLLMRouting:
    """The model_names, the aliases, the wildcard patterns."""

    model_names: frozenset[str]
    aliases: dict[str, str]
    patterns: tuple[_Pattern, ...]

    @classmethod
    def of(cls, litellm: LiteLLMSettings) -> LiteLLMRouting:
        names = frozenset(model.model_name for model in litellm.models)
        patterns = tuple(_Pattern.of(name) for name in sorted(names) if WILDCARD in name)
        return cls(names, litellm.aliases, patterns)

    def model_names_for(self, requested: str) -> tuple[str, ...]:
        """The model_names LiteLLM may route `requested` to; () when none is named so."""
        name = self.aliases.get(requested, requested)
        if name in self.model_names:
            return (name,)
        matching = [pattern for pattern in self.patterns if pattern.regex.match(name)]
        if not matching:
            return ()
        best = max(pattern.specificity for pattern in matching)
        return tuple(p.model_name for p in matching if p.specificity == best)
