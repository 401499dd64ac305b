"""scripts/bench_recall_steps.py drives recall's steps through private parts (the index's
search thread replaced by a call on the driver's thread): each step still runs against
this checkout, and a question answered with its hits gets a block."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.bench_memory import seed_index
from scripts.bench_processes import ROOT
from scripts.bench_recall_steps import DRIVER, STEPS


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recall-steps") / "index.sqlite3"
    questions = asyncio.run(seed_index(path, 300))
    path.with_suffix(".questions").write_text("\n".join(questions))
    return path


@pytest.mark.parametrize("step", STEPS)
def test_each_step_runs_against_this_checkout(index: Path, step: str) -> None:
    recalled = "assert sum(o.recalled for o in outcomes) > 0" if step == "apply with hits" else ""
    driver = DRIVER.format(path=str(index)).replace(
        "        await step(takes[number % len(takes)])",
        "        outcomes.append(await step(takes[number % len(takes)]))",
    )
    driver = driver.replace("    for number in", "    outcomes = []\n    for number in")
    driver = driver.replace("\n\nasyncio.run(main())", f"\n    {recalled}\n\nasyncio.run(main())")
    env = {"PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", driver, step, "20"], cwd=ROOT, env=env, check=True)
