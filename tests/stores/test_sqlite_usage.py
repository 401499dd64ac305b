"""The SQLite usage log's writes, however they are bound and rolled up, store the rows a
plain `executemany` of each record's values stores, and answer the series that counting
each record on its own gives."""

from __future__ import annotations

import asyncio
import collections
import math
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.series import RESOLUTIONS, SERIES_GROUPS, UsageSeries
from memory_proxy.records.usage import FIELD_NAMES, UsageRecord
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog

texts = st.text(st.characters(codec="utf-8"), max_size=8)
optional_floats = st.none() | st.floats(0, 1e6)
optional_counts = st.none() | st.integers(0, 10**6)
records = st.builds(
    UsageRecord,
    time=st.floats(1e9, 1e9 + 3 * 86400) | st.integers(3333333, 3334000).map(lambda n: n * 300.0),
    request_id=texts,
    user_id=st.sampled_from(["alice", "bob", ""]),
    session_id=st.none() | texts,
    client=st.sampled_from(["claude-code", "codex"]),
    model=st.sampled_from([None, "gpt-4o", "claude"]),
    endpoint=st.just("/v1/chat/completions"),
    status=st.sampled_from([200, 400, 502]),
    stream=st.booleans(),
    upstream_ms=st.floats(0, 1e6),
    first_byte_ms=optional_floats,
    total_ms=st.floats(0, 1e6),
    prompt_tokens=optional_counts,
    completion_tokens=optional_counts,
    cost=st.none() | st.floats(0, 100),
    finish_reason=st.none() | st.sampled_from(["stop", "length"]),
    tool=st.none() | st.just("search_memory"),
    hits=optional_counts,
    recalled_tokens=optional_counts,
)
batches = st.lists(st.lists(records, min_size=1, max_size=30), min_size=1, max_size=4)


def _stored(path: Path) -> list[tuple[Any, ...]]:
    """Every column of every row with its storage class: an int stored for a float, or a
    text for a NULL, differs."""
    columns = ", ".join(f"typeof({name}), {name}" for name in FIELD_NAMES)
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {columns} FROM usage ORDER BY id").fetchall()


def _executemany(path: Path, written: list[UsageRecord]) -> list[tuple[Any, ...]]:
    """The rows of each record's values bound as they are, as the log wrote them before it
    bound them itself (a file of the same schema, made by the log)."""
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM usage")
        marks = ", ".join("?" * len(FIELD_NAMES))
        db.executemany(
            f"INSERT INTO usage ({', '.join(FIELD_NAMES)}) VALUES ({marks})",
            [tuple(record.as_dict().values()) for record in written],
        )
    return _stored(path)


def _counted_one_by_one(
    written: list[UsageRecord], seconds: int, field: str
) -> tuple[dict[Any, list[float]], dict[int, list[list[int]]]]:
    """Each LLM call counted on its own at `seconds`: counts per (bucket, group) and the
    latency bins (four per doubling of milliseconds, from 0.01) per bucket and kind."""
    counts: dict[Any, list[float]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0.0])
    bins: dict[int, list[list[int]]] = collections.defaultdict(lambda: [[], []])
    for record in written:
        if record.tool is not None:
            continue
        bucket = math.floor(record.time / seconds)
        row = counts[(bucket, getattr(record, field) or None)]
        for index, value in enumerate(
            (1, record.status >= 400, record.prompt_tokens or 0, record.completion_tokens or 0)
        ):
            row[index] += value
        row[4] += record.cost or 0.0
        for kind, ms in enumerate((record.first_byte_ms, record.total_ms)):
            if ms is not None:
                bins[bucket][kind].append(math.floor(math.log2(max(ms, 0.01)) * 4))
    return counts, bins


def _assert_series_match(
    series: UsageSeries, written: list[UsageRecord], seconds: int, field: str
) -> None:
    counts, bins = _counted_one_by_one(written, seconds, field)
    got = {(g.bucket, g.group): g for g in series.groups}
    assert got.keys() == counts.keys()
    for key, (requests, errors, prompt, completion, cost) in counts.items():
        group = got[key]
        assert (group.requests, group.errors) == (requests, errors)
        assert (group.prompt_tokens, group.completion_tokens) == (prompt, completion)
        assert math.isclose(group.cost, cost, rel_tol=1e-9, abs_tol=1e-9)
    assert [b.bucket for b in series.latency] == sorted(bins)
    for bucket in series.latency:
        for kind, (p50, p95) in enumerate(
            ((bucket.first_byte_p50, bucket.first_byte_p95), (bucket.total_p50, bucket.total_p95))
        ):
            ordered = sorted(bins[bucket.bucket][kind])
            if not ordered:
                assert (p50, p95) == (None, None)
                continue
            for fraction, value in ((0.5, p50), (0.95, p95)):
                index = ordered[math.ceil(fraction * len(ordered)) - 1]
                assert value == round(2 ** ((index + 0.5) / 4), 2)


@settings(max_examples=60, deadline=None)
@given(batches)
def test_batches_store_the_rows_and_series_of_each_record_on_its_own(
    written: list[list[UsageRecord]],
) -> None:
    everything = [record for batch in written for record in batch]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "usage.sqlite3"

        async def main() -> dict[tuple[int, str], UsageSeries]:
            log = SQLiteUsageLog(path, max_records=10**6)
            try:
                for batch in written:
                    await log.add(batch)
                assert await log.since(0) == everything
                return {
                    (seconds, field): await log.series(0, 2**40, seconds, field)
                    for seconds in RESOLUTIONS
                    for field in SERIES_GROUPS.values()
                }
            finally:
                await log.aclose()

        answered = asyncio.run(main())
        stored = _stored(path)
        assert stored == _executemany(path, everything)
    for (seconds, field), series in answered.items():
        _assert_series_match(series, everything, seconds, field)
