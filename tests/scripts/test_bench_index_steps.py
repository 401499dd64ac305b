"""scripts/bench_index_steps.py reaches into the index process's steps (MemoryMaker, the
redactor's text, terms_of, porter.words): each still runs against this checkout, and the
screen it counts finds no secret in the text it builds, so the quick path is counted."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.bench_index_steps import _DRIVER, STEPS
from scripts.bench_processes import ROOT


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str) -> None:
    driver = _DRIVER + "\nassert not redactor._may_hold_secrets(text())"
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", driver, step, "3"], cwd=ROOT, env=env, check=True)
