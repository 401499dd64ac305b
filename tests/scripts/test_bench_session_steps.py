"""scripts/bench_session_steps.py reaches into the session path's steps (prepare, `_kept`,
the redactor's messages): each still runs against this checkout, and the screen it counts
finds no secret in the exchange it builds, so the quick path is the one counted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.bench_processes import ROOT
from scripts.bench_session_steps import _DRIVER, STEPS


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str) -> None:
    driver = (
        _DRIVER
        + "\nassert redactor._nothing_in([body['messages'][0]['content'], answer['content']])"
    )
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", driver, step, "3"], cwd=ROOT, env=env, check=True)
