"""The recall burst of scripts/bench: 100 clients at once ask topic questions through the
whole memory path, over 5,000 memories of one project (each search scores all of the
project's matching memories: the costliest search there is), against nginx. Every answer
differs, so every exchange is also a memory to write.

What it reports: the share of the burst's requests whose recall went past
`recall.timeout_ms` and the share that skipped recall (the index had more searches waiting
than it could finish in time), the memories dropped and the store's failures, and how
long after the burst an idle request is recalled again (probes one at a time, each a
question recalled before the burst, from a new session), with the proxy's CPU meanwhile.
"""

from __future__ import annotations

import dataclasses
import time
import urllib.request
from pathlib import Path

from scripts.bench_load import CHAT_PATH, Figures, chat_body, wrk_round
from scripts.bench_memory import MemoryCase, memory_cases
from scripts.bench_processes import cpu_seconds, proxy_counters

BURST_MEMORIES = 5_000
BURST_CLIENTS = 100


def burst_case(memories: int = BURST_MEMORIES) -> MemoryCase:
    """The whole memory path over `memories` memories in one project."""
    whole = next(case for case in memory_cases() if case.name == "whole memory path")
    return dataclasses.replace(whole, name="recall burst", memories=memories)


def recalled(url: str, headers: dict[str, str], question: str, session: str) -> bool:
    """Whether one request asking `question` in a new `session` got memories recalled."""
    request = urllib.request.Request(
        url + CHAT_PATH,
        data=chat_body(question).encode(),
        headers={**headers, "content-type": "application/json", "x-session-id": session},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.headers.get("x-memory-recalled") or 0) > 0


def measure_burst(
    url: str,
    pid: int,
    script: Path,
    headers: dict[str, str],
    questions: list[str],
    clients: int,
    seconds: int,
    recovery_limit: float,
) -> Figures:
    """A burst of `seconds` by wrk, then probes until recall works again (or
    `recovery_limit` seconds passed: then `recovered` is 0)."""
    probes = [q for n, q in enumerate(questions) if recalled(url, headers, q, f"before-{n}")]
    if not probes:
        raise RuntimeError(f"{url}: no question is recalled even before the burst")
    before = proxy_counters(url)
    load = wrk_round(url, clients, seconds, script)
    ended, cpu_before = time.monotonic(), cpu_seconds(pid)
    after = proxy_counters(url)
    sent, recovered = 0, False
    while not recovered and time.monotonic() - ended < recovery_limit:
        sent += 1
        recovered = recalled(url, headers, probes[sent % len(probes)], f"after-{sent}")
    recovery = time.monotonic() - ended
    cpu = cpu_seconds(pid) - cpu_before
    final = proxy_counters(url)

    def grew(counters: dict[str, float], name: str) -> float:
        return counters.get(name, 0) - before.get(name, 0)

    requests = grew(after, "requests")
    return {
        "clients": clients,
        "seconds": seconds,
        "requests": requests,
        "rps": load["rps"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "past_budget_pct": 100 * grew(after, "recall_timeouts") / requests,
        "skipped_pct": 100 * grew(after, "recall_skipped") / requests,
        "memories_dropped": grew(final, "memories_dropped"),
        "store_errors": grew(final, "memory_store_errors"),
        "recovered": float(recovered),
        "recovery_s": recovery,
        "recovery_probes": sent,
        "recovery_cpu_pct": 100 * cpu / recovery,
    }
