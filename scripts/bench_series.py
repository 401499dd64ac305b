"""How fast the charts' series come out of a SQLite usage log of 100,000 records (the
default `usage.max_records`), spread over the last 7 days: the store's query and the
answer of `GET /v1/usage/series` before it is encoded.
Run: .venv/bin/python scripts/bench_series.py"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from memory_proxy.accounting.series import checked_window, series_view
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog

RECORDS = 100_000
SPAN = 7 * 86400
RUNS = 15
WINDOWS = [("1h", 300, 3600), ("24h", 3600, 86400), ("7d", 3600, SPAN), ("7d", 86400, SPAN)]


def records(now: float) -> list[UsageRecord]:
    rng = random.Random(7)
    return [
        UsageRecord(
            time=now - rng.random() * SPAN,
            request_id=f"{i:032x}",
            user_id=rng.choice(["pycharm-ai", "claude-cli", "codex", "default-dev"]),
            session_id=None,
            client=rng.choice(["OpenAIClientImpl/Java", "claude-cli", "default"]),
            model=rng.choice(["gpt-4o", "claude-sonnet-4.5", "demo"]),
            endpoint="/v1/chat/completions",
            status=rng.choice([200] * 19 + [500]),
            stream=rng.random() < 0.5,
            upstream_ms=rng.uniform(5, 500),
            first_byte_ms=rng.uniform(5, 800),
            total_ms=rng.uniform(10, 9000),
            prompt_tokens=rng.randint(10, 9000),
            completion_tokens=rng.randint(1, 900),
            cost=rng.uniform(0, 0.05),
            finish_reason=rng.choice(["stop", "stop", "stop", "length"]),
        )
        for i in range(RECORDS)
    ]


async def main() -> None:
    now = time.time()
    with tempfile.TemporaryDirectory() as folder:
        log = SQLiteUsageLog(Path(folder) / "usage.sqlite3", RECORDS)
        batch = sorted(records(now), key=lambda r: r.time)
        started = time.perf_counter()
        for start in range(0, RECORDS, 2000):  # the recorder's batch size
            await log.add(batch[start : start + 2000])
        per_record = (time.perf_counter() - started) / RECORDS * 1e6
        print(f"writing, with the roll-up: {per_record:.1f} µs a record (off the request path)")
        print(f"{RECORDS} records over 7 days; median of {RUNS} runs, p95 in brackets")
        for name, bucket, span in WINDOWS:
            for group in ("model", "client"):
                timings = []
                for _ in range(RUNS):
                    started = time.perf_counter()
                    first, last = checked_window(now - span, now, bucket)
                    data = await log.series(first, last, bucket, group)
                    series_view(data, first, last, bucket, group)
                    timings.append((time.perf_counter() - started) * 1000)
                timings.sort()
                p95 = timings[int(0.95 * RUNS) - 1]
                print(
                    f"since={name:>3} bucket={bucket:>5}s group_by={group:<6} "
                    f"{statistics.median(timings):6.1f} ms ({p95:.1f})"
                )
        await log.aclose()


if __name__ == "__main__":
    asyncio.run(main())
