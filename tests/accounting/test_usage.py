"""Accounting of usage (accounting/usage.py): `--since` parsed, summaries grouped and
totalled, and the recorder writing in the background: flushed on close, a failing or
stuck log losing records not requests, drops counted and logged at most once a minute,
as fast as the SQLite log can take them (the logs: tests/stores/test_usage_logs)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from memory_proxy.accounting.usage import (
    QUEUE_LIMIT,
    UsageRecorder,
    parse_since,
    summarize,
)
from memory_proxy.records.usage import Feedback, UsageRecord
from memory_proxy.stores.in_memory import InMemoryUsageLog
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.accounting.usage_support import NOW, usage_record
from tests.support import eventually


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
