"""Where a saturated proxy's CPU goes, thread by thread: its event loop, its other
threads, and its children's (the index process and its SQLite thread), per request, while
wrk sends `hi` from 50 clients to the no-memory and no-session proxies in turn (nginx
behind them, the shipped config, as scripts/bench serves them). The event loop is what
bounds throughput at 50 clients; the rest shares the second core with nginx and wrk.

    PYTHONPATH=$PWD .venv/bin/python -m scripts.bench_threads [--rounds 3] [--seconds 6]
        [--checkout DIR]  # the no-session proxy runs DIR's code (a patched copy, say)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import psutil

from scripts.bench_load import parse_wrk, run_wrk, write_wrk_script
from scripts.bench_nginx import nginx_upstream
from scripts.bench_processes import ROOT, memory_proxy_process, proxy_config

CLIENTS = 50
WARM_UP_SECONDS = 2
CASES: dict[str, dict[str, dict[str, object]]] = {
    "no memory": {"memory": {"enabled": False}},
    "no session header": {},
}

ThreadTimes = dict[tuple[int, int], float]  # (pid, thread id): CPU seconds


def thread_times(pid: int) -> ThreadTimes:
    """CPU seconds of every thread of the process `pid` and of its children."""
    parent = psutil.Process(pid)
    return {
        (process.pid, thread.id): thread.user_time + thread.system_time
        for process in (parent, *parent.children(recursive=True))
        for thread in process.threads()
    }


def per_request(
    pid: int, before: ThreadTimes, after: ThreadTimes, requests: int
) -> tuple[float, float]:
    """µs per request of the event loop (the process's main thread) and of all the rest
    (its other threads, its children's threads: those started meanwhile count whole)."""
    spent = {key: seconds - before.get(key, 0.0) for key, seconds in after.items()}
    loop = spent.pop((pid, pid), 0.0)
    return loop / requests * 1e6, sum(spent.values()) / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        with nginx_upstream(directory / "nginx") as (upstream, _):
            script = write_wrk_script(directory / "hi.lua")
            for round_ in range(args.rounds):
                for name, sections in CASES.items():
                    checkout = args.checkout if name == "no session header" else ROOT
                    config = proxy_config(directory, f"{round_}-{len(name)}", sections)
                    with memory_proxy_process(config, upstream, checkout=checkout) as (url, proxy):
                        run_wrk(url, CLIENTS, WARM_UP_SECONDS, script)
                        before = thread_times(proxy.pid)
                        output = run_wrk(url, CLIENTS, args.seconds, script)
                        after = thread_times(proxy.pid)
                    figures = parse_wrk(url, output)
                    loop, rest = per_request(proxy.pid, before, after, int(figures["requests"]))
                    print(
                        f"round {round_ + 1} {name:<18} {figures['rps']:8,.0f} req/s,"
                        f" event loop {loop:6.1f} µs a request, other threads {rest:5.1f} µs"
                    )


if __name__ == "__main__":
    main()
