"""The bench's memory cases measure what they say: session memory stores every exchange
in the seeded sessions, and the whole path recalls from its seeded index and indexes every
exchange (small stores here; the bench seeds 10,000 of each)."""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import ExitStack
from pathlib import Path

import pytest

from memory_proxy.config import MemorySettings
from memory_proxy.stores.open import open_store
from scripts import bench
from scripts.bench import memory_proxy
from scripts.bench_load import wrk_round
from scripts.bench_memory import (
    MemoryCase,
    indexed_memories,
    memory_cases,
    memory_cost,
)
from scripts.bench_nginx import nginx_binary, nginx_upstream
from scripts.bench_processes import ROOT, proxy_counters
from scripts.bench_report import Results

pytestmark = pytest.mark.skipif(nginx_binary() is None, reason="nginx is not installed")
SESSIONS = 20


def case_named(name: str, memories: int = 0) -> MemoryCase:
    case = next(case for case in memory_cases() if case.name == name)
    return dataclasses.replace(case, sessions=SESSIONS, memories=memories or case.memories)


def measure(tmp_path: Path, case: MemoryCase, results: Results) -> tuple[Path, dict[str, float]]:
    """One short wrk round through the case's proxy; its SQLite file once it stopped."""
    with ExitStack() as servers:
        upstream, _ = servers.enter_context(nginx_upstream(tmp_path / "nginx"))
        proxy = memory_proxy(servers, tmp_path, case, upstream, results)
        assert wrk_round(proxy.url, 2, 1, proxy.script)["requests"] > 0
        counters = proxy_counters(proxy.url)
    return next(tmp_path.glob("*memory*.sqlite3")), counters


async def stored_messages(path: Path, user: str) -> int:
    store = open_store(MemorySettings(store="sqlite", sqlite_path=path))
    try:
        infos = [await store.session(user, f"s{n}") for n in range(SESSIONS)]
    finally:
        await store.aclose()
    return sum(info.message_count for info in infos if info is not None)


def test_session_memory_costs_are_measured_in_process(tmp_path: Path) -> None:
    settings = MemorySettings(store="sqlite", sqlite_path=tmp_path / "in-process.sqlite3")
    figures = asyncio.run(memory_cost(settings, sessions=50, samples=50))
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]


def test_session_memory_stores_each_exchange_in_the_seeded_sessions(tmp_path: Path) -> None:
    path, counters = measure(tmp_path, case_named("session memory"), Results())
    stored = asyncio.run(stored_messages(path, "bench"))
    assert stored > SESSIONS * 6 + 20
    assert set(counters) == {"requests"}  # nothing skipped or lost
    assert counters["requests"] > 20


def test_the_whole_path_recalls_from_the_seeded_index_and_indexes_each_exchange(
    tmp_path: Path,
) -> None:
    results = Results()
    path, counters = measure(tmp_path, case_named("whole memory path", memories=500), results)
    assert results.recalled_per_request is not None and results.recalled_per_request >= 1
    assert asyncio.run(indexed_memories(path)) > 500 + 20
    assert asyncio.run(stored_messages(path, "user0")) > SESSIONS * 6 + 20
    assert "memory_store_errors" not in counters


def test_another_checkouts_store_gets_the_same_sessions_and_memories(tmp_path: Path) -> None:
    """--compare seeds the compared commit's store by its own code (here this checkout's,
    run as the driver runs any other): the sessions and, in its index, the memories."""
    case = case_named("whole memory path", memories=40)
    path = tmp_path / "compared.sqlite3"
    case.seed_of(path, ROOT)
    assert asyncio.run(indexed_memories(path)) == 40
    assert asyncio.run(stored_messages(path, case.headers["x-memory-user-id"])) == SESSIONS * 6


def test_cases_names_the_post_cases_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--cases` picks the POST cases' proxies by name; a name that is no case is
    refused before anything starts."""
    monkeypatch.setattr("sys.argv", ["bench", "--cases", "session memory,no such case"])
    with pytest.raises(SystemExit) as refused:
        bench.main()
    assert refused.value.code == 2
