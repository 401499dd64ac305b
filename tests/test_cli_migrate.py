"""`memory-proxy migrate --to postgresql://…`: a SQLite file's memories, live sessions,
usage records and ratings copied into PostgreSQL, and nothing copied twice on a second
run; a bad target is a clear error."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.records.messages import Message
from memory_proxy.records.usage import Feedback, UsageRecord
from memory_proxy.stores.postgres_index import PostgresMemoryIndex
from memory_proxy.stores.postgres_sessions import PostgresStore
from memory_proxy.stores.postgres_usage import PostgresUsageLog
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.stores.sqlite_index_support import memory

MESSAGES: list[Message] = [
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
]


def usage_record(request_id: str) -> UsageRecord:
    return UsageRecord(
        time.time(),
        request_id,
        "alice",
        "s1",
        "curl",
        "m",
        "/v1/chat/completions",
        200,
        False,
        1.0,
        None,
        2.0,
        10,
        5,
        0.001,
    )


def fill(path: Path) -> None:
    async def write() -> None:
        store, index = SQLiteStore(path, 3600), SQLiteMemoryIndex(path)
        log = SQLiteUsageLog(path, 1000)
        await store.append("alice", "s1", MESSAGES, partial=False)
        await index.add([memory("the port is 5433"), memory("the host is db1", at=2_000.0)])
        await log.add([usage_record("r1"), usage_record("r2")])
        await log.add_feedback(Feedback("r1", time.time(), 1.0, "good", time.time()))
        for part in (store, index, log):
            await part.aclose()

    asyncio.run(write())


def migrated(url: str) -> tuple[list[str], list[object], list[str], int]:
    async def read() -> tuple[list[str], list[object], list[str], int]:
        store, index, log = (
            PostgresStore(url, 3600),
            PostgresMemoryIndex(url),
            PostgresUsageLog(url, 1000),
        )
        try:
            texts = [r.text async for batch in index.export(None, None) for r in batch]
            messages: list[object] = list(await store.load("alice", "s1"))
            records = [r.request_id for r in await log.since(0)]
            ratings = len(await log.feedback_since(0))
            return texts, messages, records, ratings
        finally:
            for part in (store, index, log):
                await part.aclose()

    return asyncio.run(read())


def test_a_sqlite_file_is_copied_whole_and_once(tmp_path: Path, postgres_url: str) -> None:
    fill(tmp_path / "memory.sqlite3")
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {tmp_path / 'memory.sqlite3'}\n")
    run = CliRunner().invoke(
        main,
        ["--config", str(config), "migrate", "--to", "os.environ/PG"],
        env={"PG": postgres_url},
    )
    assert run.exit_code == 0, run.output
    assert "2 memories (2 new), 1 sessions (2 messages), 2 usage records, 1 ratings" in run.output
    assert migrated(postgres_url) == (
        ["the port is 5433", "the host is db1"],
        MESSAGES,
        ["r1", "r2"],
        1,
    )

    again = CliRunner().invoke(main, ["--config", str(config), "migrate", "--to", postgres_url])
    assert again.exit_code == 0, again.output
    assert "2 memories (0 new), 0 sessions (0 messages), usage records not copied" in again.output
    assert migrated(postgres_url) == (
        ["the port is 5433", "the host is db1"],
        MESSAGES,
        ["r1", "r2"],
        1,
    )


def test_a_bad_target_is_named_without_its_password(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {tmp_path / 'memory.sqlite3'}\n")
    run = CliRunner().invoke(
        main, ["--config", str(config), "migrate", "--to", "mysql://team:pa55@db/memory"]
    )
    assert run.exit_code == 2
    assert "expected a postgresql:// URL (got 'mysql://team:***@db/memory')" in run.output
    assert "pa55" not in run.output
