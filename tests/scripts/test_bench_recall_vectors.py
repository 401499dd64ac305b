"""The vector search benchmark, small: each way of searching is measured and answers,
and sqlite-vec's part says how to install it when its bench-only packages are missing."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from scripts.bench_recall_vectors import measure


def test_a_small_run_measures_each_way(tmp_path: Path) -> None:
    figures = asyncio.run(measure(tmp_path, 300, 5))
    assert figures["memories"] == 300
    assert set(figures["rows read"]) == {"p50 ms", "p99 ms"}
    assert set(figures["held"]) == {
        "first search (reads the project), ms",
        "p50 ms",
        "p99 ms",
        "after 32 added, p50 ms",
    }
    if importlib.util.find_spec("apsw") and importlib.util.find_spec("sqlite_vec"):
        assert set(figures["sqlite-vec"]) == {"inserting, s", "p50 ms", "p99 ms"}
    else:
        assert "requirements-bench.txt" in figures["sqlite-vec"]["skipped"]
