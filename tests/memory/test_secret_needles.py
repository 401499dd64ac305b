"""A folded rule's needles (secret_rules.SecretRule.needles) are only a cheaper first look:
every text its expression matches holds one of them, so skipping a text that holds none
redacts nothing less. The screen gated by them (Redactor._may_hold_secrets: the plain rules
searched at once, the folded ones through their needles' gates) answers as the rules'
searches, one by one, answered at 1d3743b."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.memory.redaction import Redactor
from memory_proxy.memory.secret_rules import BUILTIN_RULES, SecretRule
from tests.memory.test_redaction_text_screen import OWN_KEY, TEXTS

WITH_NEEDLES = [rule for rule in BUILTIN_RULES if rule.needles]


@pytest.mark.parametrize("rule", WITH_NEEDLES, ids=[rule.kind for rule in WITH_NEEDLES])
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_whatever_a_rule_matches_holds_one_of_its_needles(
    rule: SecretRule, data: st.DataObject
) -> None:
    """(A folded rule's expression is searched in the lower case: whatever text it is.)"""
    match = rule.pattern.search(data.draw(st.from_regex(rule.pattern)))
    assert match is not None
    assert any(needle in match[0] for needle in rule.needles), (rule.kind, match[0])


def _without_needles(rule: SecretRule) -> SecretRule:
    return dataclasses.replace(rule, needles=())


def _any_candidate(text: str) -> bool:
    """The screen as 1d3743b asked it: every plain rule's search, then each other rule's
    first match (the folded ones on the lower case, behind their needles then)."""
    redactor = Redactor(exact=(OWN_KEY,))
    lowered = text.lower()
    for rule in redactor._rules:
        if rule.after is not None:
            continue
        if not rule.folded:
            found = rule.pattern.search(text)
        elif rule.kind != "auth-header" and not any(n in lowered for n in rule.needles):
            found = None  # the folded rules that had needles before
        elif len(lowered) == len(text):
            found = rule.pattern.search(lowered)
        else:
            assert rule.ignoring_case is not None
            found = rule.ignoring_case.search(text)
        if found is not None:
            return True
    return False


@settings(max_examples=500, deadline=None)
@given(TEXTS | st.text(max_size=80))
def test_the_gated_screen_answers_as_every_search_did(text: str) -> None:
    screen = Redactor(exact=(OWN_KEY,))._may_hold_secrets
    assert screen(text) == _any_candidate(text)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_a_text_is_redacted_as_by_rules_without_needles(text: str) -> None:
    seen: list[str] = []
    redacted = Redactor(exact=(OWN_KEY,), on_redacted=seen.append).text(text)
    expected: list[str] = []
    plain = Redactor(
        [_without_needles(rule) for rule in BUILTIN_RULES],
        exact=(OWN_KEY,),
        on_redacted=expected.append,
    )
    assert redacted == plain.text(text)
    assert seen == expected
