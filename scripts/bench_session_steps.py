"""Instructions per call of the session path's own steps on the event loop: preparing a
one-turn request over a session's six stored messages (memory/injection.py), and keeping
and screening the exchange to store (conversation.py's `_kept`, the redactor's messages).

`bench_hop --callgrind` counts whole requests, but how many loads and appends each of the
store thread's batches gathers (set by valgrind's scheduling of the threads) moves those
counts by ~100k from run to run; each step alone counts the same every time. Each step is
run 200 and 1,200 times under callgrind, the difference divided by 1,000.

    .venv/bin/python -m scripts.bench_session_steps [--checkout DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench_processes import ROOT
from scripts.callgrind import total

STEPS = ("prepare", "keep and screen", "screen")
RUNS = (200, 1200)

# Run with the checkout on sys.path: `step` `count`. Written against what both the
# checkout and the base have (prepare, ConversationMemory._kept, Redactor.messages).
_DRIVER = """
import sys
from memory_proxy.config import Settings
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.memory.injection import ContextLimits, prepare
from memory_proxy.memory.redaction import Redactor
from memory_proxy.wire.registry import CHAT

exchange = [
    {"role": "user", "content": "a question of a typical length " * 4},
    {"role": "assistant", "content": "an answer of a typical length " * 8},
]
history = [dict(m) for m in exchange * 3]  # as scripts/bench_memory.py seeds a session
body = {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}
answer = {"role": "assistant", "content": "Noted (reference 0123456789abcdef0123456789ab)."}
limits = ContextLimits(50, 8000)
redactor = Redactor.configured(Settings())
memory = ConversationMemory.__new__(ConversationMemory)
memory._redactor = redactor
steps = {
    "prepare": lambda: prepare(CHAT, body, history, limits),
    "keep and screen": lambda: redactor.messages(
        [memory._kept(message, False) for message in (body["messages"][0], answer)]
    ),
    "screen": lambda: redactor.messages([body["messages"][0], answer]),
}
step = steps[sys.argv[1]]
for _ in range(int(sys.argv[2])):
    step()
"""


def instructions(
    checkout: Path, step: str, count: int, directory: Path, driver_code: str = _DRIVER
) -> int:
    """Instructions of `driver_code` (run with `step` `count`) against `checkout`."""
    out = directory / f"{len(list(directory.iterdir()))}.callgrind"
    driver = [sys.executable, "-c", driver_code, step, str(count)]
    env = {"PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"}
    # Once without valgrind first: a checkout's first run compiles its modules.
    subprocess.run(driver, cwd=checkout, env=env, check=True, capture_output=True)
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *driver],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
    )
    counted = total(out)
    assert counted is not None, "no callgrind totals"
    return counted


def count_steps(description: str, steps: tuple[str, ...], code: str = _DRIVER) -> None:
    """The command line of a bench counting `steps` of the driver `code`: each step's
    instructions per call, in `--checkout` (this one by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to measure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as temporary:
        for step in steps:
            few, many = (instructions(args.checkout, step, n, Path(temporary), code) for n in RUNS)
            print(f"{step}: {(many - few) / (RUNS[1] - RUNS[0]) / 1000:.1f}k instructions")


if __name__ == "__main__":
    count_steps(__doc__.split("\n\n")[0], STEPS)
