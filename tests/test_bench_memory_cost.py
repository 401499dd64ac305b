"""The benchmark's memory figure runs the real memory path: a change to its interfaces
that the benchmark does not follow fails here, not on the next release's measurement."""

from __future__ import annotations

import asyncio
from pathlib import Path

from memory_proxy.config import MemorySettings
from scripts.bench import memory_cost


def test_memory_cost_runs_against_a_sqlite_store(tmp_path: Path) -> None:
    settings = MemorySettings(store="sqlite", sqlite_path=tmp_path / "bench.sqlite3")
    figures = asyncio.run(memory_cost(settings, sessions=5, samples=5))
    assert set(figures) == {"p50_ms", "p99_ms"}  # it also asserts history was injected
