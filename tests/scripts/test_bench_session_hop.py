"""scripts/bench_session_hop.py's driver runs every way of waiting against this checkout
(without valgrind here: the counting itself is callgrind's)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from scripts.bench_processes import ROOT
from scripts.bench_session_hop import _DRIVER, WAYS


@pytest.mark.parametrize("way", WAYS)
def test_the_driver_runs_each_way(way: str) -> None:
    driver = [sys.executable, "-c", _DRIVER, way, "2"]
    done = subprocess.run(driver, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
