"""scripts/bench_nosession_steps.py drives the no-session memory turn's steps through
private parts (IndexProcess's timer and sender): each step still runs against this
checkout, and its exchange is kept for the index, so `finish` counts the hand-off."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.bench_nosession_steps import DRIVER, STEPS
from scripts.bench_processes import ROOT


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(step: str) -> None:
    kept = "memory.finish(turn, answer)\nassert turn.question is not None and indexer._waiting"
    driver = f"{DRIVER}\n{kept}"
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", driver, step, "3"], cwd=ROOT, env=env, check=True)
