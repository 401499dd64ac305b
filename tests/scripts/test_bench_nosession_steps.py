"""scripts/bench_nosession_steps.py drives the no-session memory turn's steps through
private parts (IndexProcess's timer and sender): each step still runs against this
checkout, and its exchange is kept for the index, so `finish` counts the hand-off."""

from __future__ import annotations

import pytest

from scripts.bench_nosession_steps import DRIVER, STEPS
from tests.scripts.drivers_support import failures_of_each


@pytest.fixture(scope="module")
def failures() -> dict[str, str]:
    kept = "memory.finish(turn, answer)\nassert turn.question is not None and indexer._waiting"
    return failures_of_each(f"{DRIVER}\n{kept}", STEPS, 3)


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str, failures: dict[str, str]) -> None:
    assert step not in failures, failures[step]
