"""Instructions per request of session memory's hand-offs to the SQLite store's thread and
back, counted alone: 50 requests at a time each load a history from a real SQLiteStore
(2,000 sessions of six messages, in memory) and append an exchange, under uvloop, as
ConversationMemory does, with nothing else around them.

`bench_hop --callgrind` counts whole requests, but how many loads and appends each of
the thread's batches gathers (valgrind's scheduling of the threads) moves those counts by
tens of thousands from run to run; here each way of waiting is run 10 and 50 rounds of 50
requests under callgrind, the difference divided by 2,000, by thread.

    .venv/bin/python -m scripts.bench_session_hop [--ways history-wait,timeout,unbounded,none]

The ways: `history-wait` (memory/history_wait.py, what ConversationMemory does),
`timeout` (`asyncio.timeout` around each load, as before it), `unbounded` (the load
awaited with no bound), `none` (no store: the 50 coroutines alone).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench_processes import ROOT
from scripts.callgrind import totals_by_thread

WAYS = ("history-wait", "timeout", "unbounded", "none")
ROUNDS = (10, 50)
REQUESTS = 50  # at a time, as bench_hop's clients (the driver's `range(50)`)

_DRIVER = """
import asyncio, random, sys
from pathlib import Path
import uvloop
from memory_proxy.memory.history_wait import HistoryWaits
from memory_proxy.stores.sqlite import SQLiteStore

way, rounds = sys.argv[1], int(sys.argv[2])
SESSIONS = 2000
exchange = [
    {"role": "user", "content": "a question of a typical length " * 4},
    {"role": "assistant", "content": "an answer of a typical length " * 8},
]

async def main():
    store = SQLiteStore(Path(":memory:"), 3600, max_messages=200)
    await asyncio.gather(*(
        store.append("u", f"s{n}", exchange * 3, partial=False) for n in range(SESSIONS)
    ))
    waits = HistoryWaits(60)  # never reached, even under valgrind
    pending = set()
    chosen = random.Random(1)

    async def request():
        session = f"s{chosen.randrange(SESSIONS)}"
        if way == "none":
            return
        if way == "history-wait":
            await waits.load(store.load("u", session))
        elif way == "timeout":
            async with asyncio.timeout(60):
                await store.load("u", session)
        else:
            await store.load("u", session)
        stored = store.append("u", session, exchange, partial=False)
        pending.add(stored)
        stored.add_done_callback(pending.discard)

    for _ in range(rounds):
        await asyncio.gather(*(request() for _ in range(50)))
    await store.aclose()

uvloop.run(main())
"""


def instructions(checkout: Path, way: str, rounds: int, directory: Path) -> dict[int, int]:
    """Instructions run by each thread (1: the event loop's, 2: the store's)."""
    out = directory / f"{way}-{rounds}.callgrind"
    driver = [sys.executable, "-c", _DRIVER, way, str(rounds)]
    env = {"PYTHONPATH": str(checkout), "PYTHONHASHSEED": "0"}
    valgrind = ["valgrind", "--tool=callgrind", "--separate-threads=yes"]
    subprocess.run(
        [*valgrind, f"--callgrind-out-file={out}", *driver],
        cwd=checkout,
        env=env,
        check=True,
        capture_output=True,
    )
    return totals_by_thread(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ways", default=",".join(WAYS), help=f"of {', '.join(WAYS)}")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to measure")
    args = parser.parse_args()
    requests = (ROUNDS[1] - ROUNDS[0]) * REQUESTS
    with tempfile.TemporaryDirectory(prefix="bench-session-hop-") as temporary:
        for way in args.ways.split(","):
            few, many = (instructions(args.checkout, way, n, Path(temporary)) for n in ROUNDS)
            per_thread = {t: (many[t] - few.get(t, 0)) / requests / 1000 for t in sorted(many)}
            threads = ", ".join(f"thread {t} {count:.1f}k" for t, count in per_thread.items())
            print(f"{way}: {threads} instructions per request", flush=True)


if __name__ == "__main__":
    main()
