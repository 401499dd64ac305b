"""scripts/bench_session_steps.py reaches into the session path's steps (prepare, `_kept`,
the redactor's messages): each still runs against this checkout, and the screen it counts
finds no secret in the exchange it builds, so the quick path is the one counted."""

from __future__ import annotations

import pytest

from scripts.bench_session_steps import _DRIVER, STEPS
from tests.scripts.drivers_support import failures_of_each


@pytest.fixture(scope="module")
def failures() -> dict[str, str]:
    driver = (
        _DRIVER
        + "\nassert redactor._nothing_in([body['messages'][0]['content'], answer['content']])"
    )
    return failures_of_each(driver, STEPS, 3)


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str, failures: dict[str, str]) -> None:
    assert step not in failures, failures[step]
