"""scripts/bench_index_steps.py reaches into the index process's steps (MemoryMaker, the
redactor's text, terms_of, porter.words): each still runs against this checkout, and the
screen it counts finds no secret in the text it builds, so the quick path is counted."""

from __future__ import annotations

import pytest

from scripts.bench_index_steps import _DRIVER, STEPS
from tests.scripts.drivers_support import failures_of_each


@pytest.fixture(scope="module")
def failures() -> dict[str, str]:
    driver = _DRIVER + "\nassert not redactor._may_hold_secrets(text())"
    return failures_of_each(driver, STEPS, 3)


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str, failures: dict[str, str]) -> None:
    assert step not in failures, failures[step]
