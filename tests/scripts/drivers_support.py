"""The benches' drivers (a script run as `python -c DRIVER NAME COUNT` to count one step or
way under callgrind) run against this checkout: every name in one interpreter, each in a
namespace of its own as `python -c` gives it, so a module of N names starts one process,
not N (each start and its imports cost about 0.2 s of CPU; 18 starts in four modules)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from scripts.bench_processes import ROOT

_RUN_EACH = """
import json, sys, traceback
source, names, count = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
driver = compile(source, "<string>", "exec")
failed = {}
for name in names:
    sys.argv = ["-c", name, count]
    try:
        exec(driver, {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as stop:
        if stop.code not in (None, 0):
            failed[name] = f"exited with {stop.code!r}"
    except BaseException:
        failed[name] = traceback.format_exc()
print(json.dumps(failed))
"""


def failures_of_each(driver: str, names: Sequence[str], count: int) -> dict[str, str]:
    """{name: its traceback} for each name whose run of `driver` failed."""
    argv = [sys.executable, "-c", _RUN_EACH, driver, json.dumps(list(names)), str(count)]
    done = subprocess.run(
        argv, cwd=ROOT, env={"PYTHONPATH": str(ROOT)}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    failed: dict[str, str] = json.loads(done.stdout.splitlines()[-1])
    return failed
