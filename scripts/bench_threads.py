"""Where a saturated proxy's CPU goes, thread by thread: its event loop, its other
threads, and its children's (the index process and its SQLite thread), per request, while
wrk sends `hi` from 50 clients to the no-memory and no-session proxies in turn (nginx
behind them, the shipped config, as scripts/bench serves them). The event loop is what
bounds throughput at 50 clients; the rest shares the second core with nginx and wrk.

With `--cases "whole memory path"`, scripts/bench's whole path: sessions and 10,000
memories of one project seeded once (copied for each round), questions with topic words;
its other threads are shown one by one (the busiest first: the search thread), and the
share of requests whose recall was skipped at once (the index busy: search_admission.py)
or went past its budget, from the proxy's /metrics.

    PYTHONPATH=$PWD .venv/bin/python -m scripts.bench_threads [--rounds 3] [--seconds 6]
        [--checkout DIR]  # the memory cases' proxies run DIR's code (a patched copy, say)
        [--cases "no memory,no session header,whole memory path"]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

import psutil

from scripts.bench_load import parse_wrk, run_wrk, write_wrk_script
from scripts.bench_memory import MemoryCase, memory_cases
from scripts.bench_nginx import nginx_upstream
from scripts.bench_processes import ROOT, memory_proxy_process, proxy_config, proxy_counters

CLIENTS = 50
WARM_UP_SECONDS = 2
WHOLE = "whole memory path"
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
) -> tuple[float, list[float], float]:
    """µs per request of the event loop (the process's main thread), of each of its other
    threads (the busiest first), and of its children's threads (those started meanwhile
    count whole)."""
    spent = {key: seconds - before.get(key, 0.0) for key, seconds in after.items()}
    loop = spent.pop((pid, pid), 0.0)
    threads = sorted((s for (p, _), s in spent.items() if p == pid), reverse=True)
    children = sum(s for (p, _), s in spent.items() if p != pid)
    return (
        loop / requests * 1e6,
        [seconds / requests * 1e6 for seconds in threads],
        children / requests * 1e6,
    )


class Seeded:
    """A memory case's store, seeded once by a checkout's code, copied for each proxy."""

    def __init__(self, directory: Path, case: MemoryCase, checkout: Path) -> None:
        self.template = directory / f"seeded-{checkout.name}.sqlite3"
        if checkout == ROOT:
            self.questions = asyncio.run(case.seed(self.template)) or ["hi"]
        else:  # stored by the other checkout's code, in its format; the same questions
            case.seed_of(self.template, checkout)
            self.questions = asyncio.run(case.seed(directory / "questions.sqlite3")) or ["hi"]

    def copy_to(self, path: Path) -> None:
        for suffix in ("", "-wal"):
            source = Path(f"{self.template}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{path}{suffix}")


def measure(url: str, pid: int, script: Path, seconds: int, memory: bool) -> tuple[str, int]:
    """One round against a running proxy: what it spent, as a line, and its requests."""
    run_wrk(url, CLIENTS, WARM_UP_SECONDS, script)
    counted = proxy_counters(url) if memory else {}
    before = thread_times(pid)
    output = run_wrk(url, CLIENTS, seconds, script)
    after = thread_times(pid)
    figures = parse_wrk(url, output)
    requests = int(figures["requests"])
    loop, threads, children = per_request(pid, before, after, requests)
    line = (
        f"{figures['rps']:8,.0f} req/s, event loop {loop:6.1f} µs a request, other threads"
        f" {sum(threads):5.1f} µs ({' + '.join(f'{t:.1f}' for t in threads if t >= 0.5)}),"
        f" children {children:5.1f} µs"
    )
    if memory:
        now = proxy_counters(url)
        late, skipped = (
            now.get(name, 0.0) - counted.get(name, 0.0)
            for name in ("recall_timeouts", "recall_skipped")
        )
        line += (
            f"; recall past budget {late / requests:.2%}, skipped at once {skipped / requests:.1%}"
        )
    return line, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    names = args.cases.split(",")
    whole = next(case for case in memory_cases() if case.name == WHOLE)
    checkouts = [ROOT] if args.checkout == ROOT else [ROOT, args.checkout]
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        seeded = {c: Seeded(directory, whole, c) for c in checkouts} if WHOLE in names else {}
        with nginx_upstream(directory / "nginx") as (upstream, _):
            script = write_wrk_script(directory / "hi.lua")
            if seeded:
                questions = seeded[ROOT].questions
                whole_script = write_wrk_script(
                    directory / "whole.lua", whole.headers, questions, whole.sessions
                )
            for round_ in range(args.rounds):
                for name in names:
                    if name == WHOLE:
                        for checkout in checkouts:
                            label = name if checkout == ROOT else f"{name} @{checkout.name}"
                            config = proxy_config(directory, f"{round_}-whole", whole.config)
                            seeded[checkout].copy_to(directory / f"{round_}-whole.sqlite3")
                            with memory_proxy_process(config, upstream, checkout=checkout) as (
                                url,
                                proxy,
                            ):
                                line, _ = measure(url, proxy.pid, whole_script, args.seconds, True)
                            print(f"round {round_ + 1} {label:<18} {line}", flush=True)
                        continue
                    checkout = args.checkout if name == "no session header" else ROOT
                    config = proxy_config(directory, f"{round_}-{len(name)}", CASES[name])
                    with memory_proxy_process(config, upstream, checkout=checkout) as (url, proxy):
                        line, _ = measure(url, proxy.pid, script, args.seconds, False)
                    print(f"round {round_ + 1} {name:<18} {line}", flush=True)


if __name__ == "__main__":
    main()
