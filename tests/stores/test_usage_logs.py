"""Every usage log (in memory, SQLite, Redis) keeps records whole, in order and only the
newest; gives the latest, finds records with their latest feedback and the same series;
an SQLite file from before finish reasons is migrated."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.records.series import bin_value, latency_bin
from memory_proxy.records.usage import FIELD_NAMES, Feedback, UsageRecord
from memory_proxy.stores.base import UsageLog
from memory_proxy.stores.in_memory import InMemoryUsageLog
from memory_proxy.stores.postgres_usage import PostgresUsageLog
from memory_proxy.stores.redis import RedisUsageLog
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.accounting.usage_support import NOW, usage_record
from tests.support import RedisServer

Scenario = Callable[[UsageLog], Coroutine[Any, Any, None]]


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., None]]:
    """Runs a scenario against each kind of usage log, each kept to `max_records`."""
    redis = RedisServer() if request.param == "redis" else None
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else ""

    def runner(scenario: Scenario, max_records: int = 100) -> None:
        async def main() -> None:
            log: UsageLog
            if request.param == "memory":
                log = InMemoryUsageLog(max_records)
            elif request.param == "sqlite":
                log = SQLiteUsageLog(tmp_path / "usage.sqlite3", max_records)
            elif request.param == "postgres":
                log = PostgresUsageLog(postgres_url, max_records)
            else:
                assert redis is not None
                log = RedisUsageLog(redis.url, max_records)
            try:
                await scenario(log)
            finally:
                await log.aclose()

        asyncio.run(main())

    yield runner
    if redis is not None:
        redis.kill()


def test_logs_keep_records_whole_and_in_order(run: Callable[..., None]) -> None:
    records = [
        usage_record(request_id="a", session_id="s1", stream=True, finish_reason="length"),
        usage_record(request_id="b", time=NOW + 1, cost=None, prompt_tokens=None),
    ]

    async def scenario(log: UsageLog) -> None:
        await log.add(records)
        assert await log.since(0) == records
        assert await log.since(NOW + 0.5) == records[1:]

    run(scenario)


def test_logs_keep_only_the_newest_records(run: Callable[..., None]) -> None:
    async def scenario(log: UsageLog) -> None:
        for batch in range(5):
            await log.add([usage_record(request_id=f"{batch}-{i}") for i in range(4)])
        kept = [record.request_id for record in await log.since(0)]
        assert kept == ["2-2", "2-3", "3-0", "3-1", "3-2", "3-3", "4-0", "4-1", "4-2", "4-3"]

    run(scenario, max_records=10)


def test_logs_give_the_latest_records_oldest_first_of_everyone_or_one_user(
    run: Callable[..., None],
) -> None:
    """What the dashboard's live view shows at once: more records than a Redis page."""
    records = [
        usage_record(request_id=f"r{i}", time=NOW + i, user_id="bob" if i % 3 else "alice")
        for i in range(1_200)
    ]

    async def scenario(log: UsageLog) -> None:
        assert await log.latest(50) == []
        await log.add(records)
        assert await log.latest(50) == records[-50:]
        alices = [r for r in records if r.user_id == "alice"]
        assert await log.latest(50, "alice") == alices[-50:]
        assert await log.latest(500, "alice") == alices
        assert await log.latest(5, "nobody") == []
        assert await log.latest(0) == []

    run(scenario, max_records=2_000)


def test_logs_find_records_and_keep_the_latest_feedback(run: Callable[..., None]) -> None:
    async def scenario(log: UsageLog) -> None:
        await log.add([usage_record(request_id=f"r{i}", time=NOW + i) for i in range(3)])
        found = await log.find("r1")
        assert found is not None and found.time == NOW + 1
        assert await log.find("nobody") is None
        await log.add_feedback(Feedback("r1", NOW + 1, -1.0, "wrong", NOW + 10))
        await log.add_feedback(Feedback("r2", NOW + 2, 0.5, "", NOW + 11))
        await log.add_feedback(Feedback("r1", NOW + 1, 1.0, "fixed", NOW + 12))
        ratings = sorted(await log.feedback_since(0), key=lambda f: f.request_id)
        assert [(f.request_id, f.score, f.comment) for f in ratings] == [
            ("r1", 1.0, "fixed"),
            ("r2", 0.5, ""),
        ]
        assert [f.request_id for f in await log.feedback_since(NOW + 2)] == ["r2"]

    run(scenario)


def test_every_log_gives_the_same_series(run: Callable[..., None]) -> None:
    """Buckets of 5 minutes: two models in the first, one error in the second, records of
    other buckets left out; percentiles from four bins per doubling, by nearest rank."""
    start = (NOW // 300) * 300
    records = [
        usage_record(request_id="old", time=start - 1),
        *(
            usage_record(request_id=f"a{i}", time=start + i, total_ms=float(2**i))
            for i in range(20)
        ),
        usage_record(request_id="b", time=start + 30, model=None, first_byte_ms=None, cost=None),
        usage_record(request_id="c", time=start + 300, status=502, total_ms=9.0, first_byte_ms=4.0),
        usage_record(request_id="late", time=start + 600),
    ]

    async def scenario(log: UsageLog) -> None:
        await log.add(records)
        first = int(start // 300)
        series = await log.series(first, first + 1, 300, "model")
        assert [(g.bucket - first, g.group, g.requests, g.errors) for g in series.groups] == [
            (0, None, 1, 0),
            (0, "demo", 20, 0),
            (1, "demo", 1, 1),
        ]
        assert series.groups[1].cost == pytest.approx(5.0)
        assert (series.groups[1].prompt_tokens, series.groups[1].completion_tokens) == (100, 140)
        latency = [
            (b.bucket - first, b.first_byte_p50, b.total_p50, b.total_p95) for b in series.latency
        ]
        # total_ms 1, 2, 4, … 2**19 and 13: the 11th is 2**9 = 512, the 20th 2**18
        truth = [(0, 12.0, 512.0, 2.0**18), (1, 4.0, 9.0, 9.0)]
        assert latency == [
            (bucket, *(bin_value(latency_bin(ms)) for ms in values)) for bucket, *values in truth
        ]
        for got, true in zip(latency, truth, strict=True):
            assert got[1:] == pytest.approx(true[1:], rel=0.091)  # 2 ** (1/8) - 1
        by_client = await log.series(first, first, 300, "client")
        assert [(g.group, g.requests) for g in by_client.groups] == [("default", 21)]
        empty = await log.series(first + 10, first + 20, 300, "user_id")
        assert (empty.groups, empty.latency) == ([], [])

    run(scenario)


def test_a_usage_file_from_before_finish_reasons_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    # Without finish_reason, and the columns that came after it (tool, hits, recalled_tokens).
    old_columns = FIELD_NAMES[: FIELD_NAMES.index("finish_reason")]
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE usage (id INTEGER PRIMARY KEY, {', '.join(old_columns)})")
        old = usage_record(request_id="old").as_dict()
        db.execute(
            f"INSERT INTO usage ({', '.join(old_columns)}) "
            f"VALUES ({', '.join('?' * len(old_columns))})",
            [old[name] for name in old_columns],
        )
    db.close()

    async def scenario() -> list[UsageRecord | None]:
        log = SQLiteUsageLog(path, 100)
        try:
            await log.add([usage_record(request_id="new", finish_reason="stop")])
            return [*(await log.since(0)), await log.find("new")]
        finally:
            await log.aclose()

    before, after, found = asyncio.run(scenario())
    assert before == usage_record(request_id="old")  # finish_reason None
    assert after == found == usage_record(request_id="new", finish_reason="stop")
