"""Where a request's microseconds go: the proxy's own code, in process, per memory case.

POSTs go straight into the ASGI app (scripts/bench_hop_driver.py, no HTTP client, no
uvicorn), through the real forwarder to nginx (scripts/bench_nginx.py), each case's store
seeded as scripts/bench seeds it. Prints the CPU per request of each case and, with
`--profile`, cProfile's top entries by own time (cumulative with `--sort cumulative`).
With `--callgrind`, the instructions each thread runs per request instead (valgrind's
callgrind, over `--requests` and a quarter of them: the difference leaves start-up out),
which a shared machine's load does not move: a few thousand per request is a real change.

    .venv/bin/python -m scripts.bench_hop [--requests 4000] [--profile] [--cases ...]

The cases: the issue's four (no session header on the shipped defaults; no memory; a
session over 10,000; a question with topic words over 10,000 memories).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from scripts.bench_memory import MemoryCase, memory_cases
from scripts.bench_nginx import nginx_upstream
from scripts.bench_processes import ROOT, proxy_config
from scripts.callgrind import totals_by_thread

DRIVER = Path(__file__).with_name("bench_hop_driver.py")


def hop_cases() -> dict[str, MemoryCase]:
    """scripts/bench's cases, named shortly."""
    cases = {case.name: case for case in memory_cases()}
    return {
        "no-session": cases["no session header"],
        "no-memory": cases["no memory"],
        "session": cases["session memory"],
        "recall": cases["whole memory path"],
    }


def run_case(
    directory: Path, name: str, case: MemoryCase, upstream: str, args: argparse.Namespace
) -> None:
    if args.callgrind:
        counts = [
            instructions(directory, name, case, upstream, args, requests)
            for requests in (args.requests // 4, args.requests)
        ]
        done = args.requests - args.requests // 4
        per_thread = {
            thread: (counts[1].get(thread, 0) - counts[0].get(thread, 0)) / done
            for thread in sorted(counts[1])
        }
        total = sum(per_thread.values())
        threads = ", ".join(f"thread {n} {ir / 1000:.1f}k" for n, ir in per_thread.items())
        print(f"== {name}: {total / 1000:.1f}k instructions per request ({threads})", flush=True)
        return
    run_driver(directory, name, case, upstream, args, args.requests)


def instructions(
    directory: Path,
    name: str,
    case: MemoryCase,
    upstream: str,
    args: argparse.Namespace,
    requests: int,
) -> dict[int, int]:
    """Instructions run by each thread (1: the event loop's) while serving `requests`."""
    out = directory / f"{name}-{requests}.callgrind"
    wrapper = [
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        f"--callgrind-out-file={out}",
    ]
    run_driver(directory, name, case, upstream, args, requests, wrapper)
    return totals_by_thread(out)


def run_driver(
    directory: Path,
    name: str,
    case: MemoryCase,
    upstream: str,
    args: argparse.Namespace,
    requests: int,
    wrapper: list[str] | None = None,
) -> None:
    config = proxy_config(directory, name, case.config | {"proxy": {"litellm_url": upstream}})
    if args.checkout == ROOT:
        questions = asyncio.run(case.seed(directory / f"{name}.sqlite3"))
    else:  # stored by the other checkout's code, in its format; the same questions
        case.seed_of(directory / f"{name}.sqlite3", args.checkout)
        questions = asyncio.run(case.seed(directory / "questions-only.sqlite3"))
    spec = {
        "config": str(config),
        "headers": case.headers,
        "sessions": case.sessions,
        "questions": questions or ["hi"],
        "clients": args.clients,
    }
    spec_path = directory / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    profile = directory / f"{name}.prof"
    argv = [*(wrapper or []), sys.executable, str(DRIVER), str(spec_path), str(requests)]
    if args.profile:
        argv += ["--profile", str(profile)]
    if args.py_spy:  # every thread sampled, the SQLite threads too, into a flat summary
        flame = Path(args.py_spy).resolve() / f"{name}.txt"
        argv = [
            *(args.py_spy_bin, "record", "--format", "raw", "-r", "997"),
            "-o",
            str(flame),
            "--",
            *argv,
        ]
    env = {**os.environ, "PYTHONPATH": str(args.checkout)}
    output = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=directory
    )  # the request log lines go to stdout, as uvicorn's do under scripts/bench
    if output.returncode:
        raise RuntimeError(f"{name}: {output.stderr[-2000:]}")
    lines = [line for line in output.stderr.strip().splitlines() if not line.startswith("==")]
    lost = "".join(
        f"\n   {line}" for line in lines if line.startswith(("lost while serving", "recall: "))
    )
    if wrapper is None:  # under valgrind, its instructions are what counts
        print(f"== {name}: {lines[-1]}\n   {lines[-2]}{lost}", flush=True)
    if args.py_spy:
        spy_summary(flame, args.top)
    if args.profile:
        stats = pstats.Stats(str(profile))
        stats.sort_stats(args.sort).print_stats(args.top)


def spy_summary(samples: Path, top: int) -> None:
    """py-spy's samples (CPU only: idle threads are not sampled) as the share of each
    function of the proxy, inclusive, and of each leaf, exclusive; start-up left out."""
    inclusive: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in samples.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        if any(frame.startswith("_find_and_load") for frame in frames):
            continue  # imports
        if frames[-1].startswith(("WorkerThread._serve", "SearchThread._serve")):
            continue  # a thread waiting for work (py-spy counts a lock's wait as running)
        total += int(count)
        leaves[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    print(f"   {total} samples; inclusive:")
    for frame, samples_in in inclusive.most_common(top):
        print(f"   {100 * samples_in / total:5.1f}%  {frame}")
    print("   exclusive:")
    for frame, samples_in in leaves.most_common(top):
        print(f"   {100 * samples_in / total:5.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=50, help="requests in flight at once")
    parser.add_argument("--cases", default=",".join(hop_cases()))
    parser.add_argument("--profile", action="store_true", help="cProfile, top entries")
    parser.add_argument("--sort", default="tottime", help="pstats order")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--py-spy", help="a directory for py-spy's raw samples of each case")
    parser.add_argument("--py-spy-bin", default="py-spy")
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to measure")
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per request, by thread (slow)"
    )
    args = parser.parse_args()
    cases = hop_cases()
    with tempfile.TemporaryDirectory(prefix="bench-hop-") as temporary, ExitStack() as servers:
        directory = Path(temporary)
        upstream, _ = servers.enter_context(nginx_upstream(directory / "nginx"))
        for name in args.cases.split(","):
            run_case(directory, name, cases[name], upstream, args)


if __name__ == "__main__":
    main()
