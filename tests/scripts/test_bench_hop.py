"""scripts/bench_hop.py counts the index process's start-up apart: it runs once per proxy
(0.1-0.2 s of CPU), and over the bench's 4,000 requests it made a third of the child's
figure per request, as if each request cost it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from scripts.bench_processes import ROOT


def test_the_index_process_start_up_is_told_apart_from_its_cpu_per_request() -> None:
    argv = [sys.executable, "-m", "scripts.bench_hop", "--cases", "no-session,no-memory"]
    argv += ["--requests", "40", "--clients", "4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    output = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    lines = {line.split(":")[0]: line for line in output.stdout.splitlines() if line[:2] == "=="}
    child = re.search(
        r"child processes \(the index's\) (\d+) µs,"
        r" of which its start-up (\d+) µs \((\d+) ms once\)",
        lines["== no-session"],
    )
    assert child is not None, lines["== no-session"]
    per_request, start_up, once = map(int, child.groups())
    assert 0 < start_up <= per_request
    assert once > 0
    assert "start-up" not in lines["== no-memory"]  # no index process without memory
