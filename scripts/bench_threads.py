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
        [--checkout DIR]  # each memory case also served by DIR's code, after this one's
        [--cases "no memory,no session header,session memory,whole memory path"]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

import psutil

from scripts.bench_load import parse_wrk, run_wrk, write_wrk_script
from scripts.bench_memory import MemoryCase, memory_cases, seed_index
from scripts.bench_nginx import nginx_upstream
from scripts.bench_processes import ROOT, memory_proxy_process, proxy_config, proxy_counters

CLIENTS = 50
WARM_UP_SECONDS = 2
DEFAULT_CASES = ("no memory", "no session header")

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
        self.template = directory / f"seeded-{len(case.name)}-{checkout.name}.sqlite3"
        found: list[str] | None = None
        if checkout == ROOT:
            found = asyncio.run(case.seed(self.template))
        else:  # stored by the other checkout's code, in its format; the same questions
            case.seed_of(self.template, checkout)
            if case.memories:
                found = asyncio.run(seed_index(directory / "questions.sqlite3", case.memories))
        self.questions = found or ["hi"]

    def copy_to(self, path: Path) -> None:
        for suffix in ("", "-wal"):
            source = Path(f"{self.template}{suffix}")
            if source.exists():
                shutil.copyfile(source, f"{path}{suffix}")


def measure(url: str, pid: int, script: Path, seconds: int, memory: bool) -> str:
    """One round against a running proxy: what it spent, as a line."""
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
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES))
    args = parser.parse_args()
    cases = {case.name: case for case in memory_cases()}
    chosen = [cases[name] for name in args.cases.split(",")]
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        with nginx_upstream(directory / "nginx") as (upstream, _):
            hi = write_wrk_script(directory / "hi.lua")
            seeded: dict[tuple[str, Path], Seeded] = {}
            scripts: dict[str, Path] = {}
            for case in chosen:
                scripts[case.name] = hi
                if case.sessions or case.memories:
                    for checkout in checkouts_of(case.name, args.checkout):
                        seeded[case.name, checkout] = Seeded(directory, case, checkout)
                    questions = seeded[case.name, ROOT].questions
                    lua = directory / f"{len(scripts)}.lua"
                    scripts[case.name] = write_wrk_script(
                        lua, case.headers, questions, case.sessions
                    )
            for round_ in range(args.rounds):
                for case in chosen:
                    for checkout in checkouts_of(case.name, args.checkout):
                        label = case.name + ("" if checkout == ROOT else f" @{checkout.name}")
                        name = f"{round_}-{len(seeded)}-{abs(hash(label))}"
                        config = proxy_config(directory, name, case.config)
                        if (case.name, checkout) in seeded:
                            seeded[case.name, checkout].copy_to(directory / f"{name}.sqlite3")
                        memory = case.name != "no memory"
                        with memory_proxy_process(config, upstream, checkout=checkout) as (
                            url,
                            proxy,
                        ):
                            line = measure(url, proxy.pid, scripts[case.name], args.seconds, memory)
                        print(f"round {round_ + 1} {label:<24} {line}", flush=True)


def checkouts_of(case: str, checkout: Path) -> list[Path]:
    """Who serves a case: this checkout, and `checkout` after it when it names another
    (the no-memory case, a reference, only this one)."""
    return [ROOT] if checkout == ROOT or case == "no memory" else [ROOT, checkout]


if __name__ == "__main__":
    main()
