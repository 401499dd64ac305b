from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.accounting.usage import (
    QUEUE_LIMIT,
    UsageRecorder,
    parse_since,
    summarize,
)
from memory_proxy.records.series import bin_value, latency_bin
from memory_proxy.records.usage import FIELD_NAMES, Feedback, UsageRecord
from memory_proxy.stores.base import UsageLog
from memory_proxy.stores.in_memory import InMemoryUsageLog
from memory_proxy.stores.postgres_usage import PostgresUsageLog
from memory_proxy.stores.redis import RedisUsageLog
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.support import RedisServer, eventually

NOW = 1_700_000_000.0
CHAT = "/v1/chat/completions"


def usage_record(**changes: Any) -> UsageRecord:
    record = UsageRecord(
        time=NOW,
        request_id="r1",
        user_id="alice",
        session_id=None,
        client="default",
        model="demo",
        endpoint="/v1/chat/completions",
        status=200,
        stream=False,
        upstream_ms=10.0,
        first_byte_ms=12.0,
        total_ms=13.0,
        prompt_tokens=5,
        completion_tokens=7,
        cost=0.25,
    )
    return dataclasses.replace(record, **changes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, 0.0),
        ("", 0.0),
        ("1699990000", 1_699_990_000.0),
        ("1699990000.5", 1_699_990_000.5),
        ("90s", NOW - 90),
        ("15m", NOW - 900),
        ("24h", NOW - 86_400),
        ("7d", NOW - 7 * 86_400),
        ("2023-11-14T22:13:20", NOW),  # no zone: UTC
        ("2023-11-14T23:13:20+01:00", NOW),
    ],
)
def test_parse_since(text: str | None, expected: float) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10y", "-5m"])
def test_parse_since_says_what_it_accepts(text: str) -> None:
    with pytest.raises(ValueError, match="epoch seconds, an ISO 8601 time or a duration"):
        parse_since(text, NOW)


def test_summaries_group_and_total() -> None:
    records = [
        usage_record(finish_reason="stop"),
        usage_record(
            request_id="r2",
            user_id="bob",
            model="gpt",
            stream=True,
            cost=None,
            first_byte_ms=None,
            finish_reason="length",
            time=NOW + 5,
            recalled_tokens=240,
        ),
        usage_record(
            request_id="r3",
            user_id="bob",
            status=502,
            prompt_tokens=None,
            completion_tokens=None,
            finish_reason="error",
            recalled_tokens=0,
        ),
    ]
    ratings = [Feedback("r2", NOW, 1.0, "", NOW), Feedback("r3", NOW, -0.5, "bad", NOW)]
    by_user = summarize(records, "user", ratings)
    assert [row["user"] for row in by_user["data"]] == ["bob", "alice"]
    bob = by_user["data"][0]
    assert bob == {
        "user": "bob",
        "requests": 2,
        "errors": 1,
        "streams": 1,
        "prompt_tokens": 5,
        "completion_tokens": 7,
        "total_tokens": 12,
        "cost": 0.25,
        "mean_first_byte_ms": 12.0,
        "mean_total_ms": 13.0,
        "hits": 0,
        "last_seen": NOW + 5,
        "users": ["bob"],
        "finish_reasons": {"length": 1, "error": 1},
        "error_rate": 0.5,
        "truncated": 1,
        "truncation_rate": 0.5,
        "refusals": 0,
        "client_disconnects": 0,
        "feedback": {"count": 2, "mean": 0.25},
        "recall": {  # a question searched, one not (None): one block of 240 tokens
            "questions": 2,
            "blocks": 1,
            "block_share": 0.5,
            "tokens": 240,
            "mean_tokens": 240.0,
        },
    }
    assert by_user["data"][1]["feedback"] == {"count": 0, "mean": None}
    assert by_user["total"]["requests"] == 3
    assert by_user["total"]["total_tokens"] == 24
    assert by_user["total"]["cost"] == 0.5
    by_model = summarize(records, "model")
    assert {row["model"]: row["requests"] for row in by_model["data"]} == {"demo": 2, "gpt": 1}
    assert summarize([usage_record(model=None)], "model")["data"][0]["model"] == "none"
    with pytest.raises(ValueError, match="group_by must be one of user, model, client"):
        summarize(records, "colour")


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


def lost_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "memory_proxy.usage"]


class ListLog(InMemoryUsageLog):
    """Remembers every batch it was given, and whether it was closed."""

    def __init__(self) -> None:
        super().__init__(100)
        self.batches: list[list[str]] = []
        self.closed = False

    async def add(self, records: list[UsageRecord]) -> None:
        self.batches.append([record.request_id for record in records])

    async def aclose(self) -> None:
        self.closed = True


class BrokenLog(ListLog):
    async def add(self, records: list[UsageRecord]) -> None:
        raise OSError("disk full")


def test_the_recorder_writes_in_the_background_and_flushes_on_close() -> None:
    log = ListLog()

    async def scenario() -> None:
        recorder = UsageRecorder(log)
        recorder.start()
        recorder.record(usage_record(request_id="x"))
        await eventually(lambda: log.batches == [["x"]])
        for name in "yz":
            recorder.record(usage_record(request_id=name))
        await recorder.aclose()

    asyncio.run(scenario())
    assert log.batches == [["x"], ["y", "z"]]
    assert log.closed


def test_a_failing_log_loses_records_not_requests(caplog: pytest.LogCaptureFixture) -> None:
    drops: list[int] = []

    async def scenario() -> UsageRecorder:
        recorder = UsageRecorder(BrokenLog(), on_drop=drops.append)
        recorder.start()
        recorder.record(usage_record())  # never raises
        await eventually(lambda: recorder.dropped == 1)
        await recorder.aclose()
        return recorder

    recorder = asyncio.run(scenario())
    assert recorder.dropped == 1
    assert drops == [1]
    assert lost_messages(caplog) == [
        "1 usage record lost (the usage log failed: disk full); more are reported once a minute"
    ]


class StuckLog(ListLog):
    """Holds every write until released, as a slow disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.released = asyncio.Event()

    async def add(self, records: list[UsageRecord]) -> None:
        await self.released.wait()
        await super().add(records)


def test_drops_are_counted_and_logged_with_their_number_at_most_once_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "memory_proxy.usage")
    drops: list[int] = []

    async def scenario() -> None:
        log = StuckLog()
        recorder = UsageRecorder(log, on_drop=drops.append)
        recorder.start()
        offered = 0
        while recorder.dropped < 3:  # the queue fills while the disk is stuck
            await asyncio.sleep(0)
            recorder.record(usage_record())
            offered += 1
        assert lost_messages(caplog) == [
            "1 usage record lost (the write queue was full); more are reported once a minute"
        ]
        log.released.set()
        await recorder.aclose()
        assert sum(len(batch) for batch in log.batches) == offered - 3

    asyncio.run(scenario())
    assert drops == [1, 1, 1]
    assert lost_messages(caplog)[1:] == ["2 usage records lost (the write queue was full)"]


def test_drops_held_back_are_reported_when_the_minute_is_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "memory_proxy.usage")

    async def scenario() -> None:
        log = StuckLog()
        recorder = UsageRecorder(log, report_every=0.05)
        recorder.start()
        while recorder.dropped == 0:
            await asyncio.sleep(0)
            recorder.record(usage_record())
        recorder.record(usage_record())  # lost too, within report_every of the first
        assert len(lost_messages(caplog)) == 1
        await eventually(lambda: len(lost_messages(caplog)) == 2)
        log.released.set()
        await recorder.aclose()

    asyncio.run(scenario())
    assert lost_messages(caplog)[1] == "1 usage record lost (the write queue was full)"


class CountingLog(SQLiteUsageLog):
    """A SQLite usage log that says how far the writing got."""

    def __init__(self, path: Path, max_records: int) -> None:
        super().__init__(path, max_records)
        self.written = 0
        self.progress = asyncio.Event()

    async def add(self, records: list[UsageRecord]) -> None:
        await super().add(records)
        self.written += len(records)
        self.progress.set()


def test_the_recorder_writes_about_as_fast_as_the_sqlite_log_can(tmp_path: Path) -> None:
    """Under sustained load the writer is bound by the database, not by a pause between
    batches (it took at most 1,000 records per 0.25 s and dropped the rest)."""
    total, chunk = 30_000, 1000
    records = [usage_record(request_id=str(i)) for i in range(total)]

    async def direct() -> float:
        log = SQLiteUsageLog(tmp_path / "direct.sqlite3", total)
        started = time.perf_counter()
        for start in range(0, total, chunk):
            await log.add(records[start : start + chunk])
        await log.aclose()
        return time.perf_counter() - started

    async def recorded() -> tuple[float, int]:
        log = CountingLog(tmp_path / "recorded.sqlite3", total)
        recorder = UsageRecorder(log)
        recorder.start()
        started = time.perf_counter()
        for start in range(0, total, chunk):
            while start - log.written > QUEUE_LIMIT - 2 * chunk:  # never fill the queue
                log.progress.clear()
                await log.progress.wait()
            for record in records[start : start + chunk]:
                recorder.record(record)
            await asyncio.sleep(0)
        await recorder.aclose()
        return time.perf_counter() - started, recorder.dropped

    direct_seconds = asyncio.run(direct())
    recorded_seconds, dropped = asyncio.run(recorded())
    print(
        f"\nSQLite usage log: {total / direct_seconds:,.0f} records/s written directly, "
        f"{total / recorded_seconds:,.0f} records/s through the recorder"
    )
    assert dropped == 0
    assert direct_seconds / recorded_seconds > 0.3


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
