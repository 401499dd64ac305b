"""The SQLite file deleted (or replaced) under running stores, with a real file: every user
of it notices, one warning says so, and what is written from then on is in the new file,
where the CLI and the next start look."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from memory_proxy.config import MemorySettings
from memory_proxy.records.memory import MemoryRecord
from memory_proxy.records.messages import Message
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores import sqlite_replaced
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.accounting.usage_support import usage_record
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

SIDE_FILES = ("-wal", "-shm")
USER_TURN: Message = {"role": "user", "content": "hi"}


def usage(request_id: str) -> UsageRecord:
    return usage_record(request_id=request_id)


def memory(text: str) -> MemoryRecord:
    return MemoryRecord(text, "alice", "p", "s", "claude-cli", "m", time.time(), text)


def rows(path: Path, query: str) -> list[tuple[object, ...]]:
    """What another process (the CLI, the next start) finds in the file."""
    with sqlite3.connect(path) as db:
        return db.execute(query).fetchall()


def delete(path: Path, how: str, tmp_path: Path) -> None:
    if how == "main file":
        path.unlink()
    elif how == "with its -wal and -shm":
        for suffix in ("", *SIDE_FILES):
            Path(f"{path}{suffix}").unlink()
    else:  # a backup moved over it: another file at the path
        backup = tmp_path / "backup.sqlite3"
        with sqlite3.connect(backup) as db:
            db.execute("CREATE TABLE restored (x)")
        backup.replace(path)


@pytest.mark.parametrize("how", ["main file", "with its -wal and -shm", "replaced"])
def test_every_user_of_a_deleted_file_writes_to_a_new_one_and_it_is_said_once(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sqlite_replaced, "CHECK_INTERVAL_SECONDS", 0.0)  # every call looks
    path = tmp_path / "data" / "memory.sqlite3"

    async def scenario() -> None:
        sessions = SQLiteStore(path, 3600)
        index = SQLiteMemoryIndex(path)
        log = SQLiteUsageLog(path, 100)
        try:
            await sessions.append(
                "alice", "before", [{"role": "user", "content": "a"}], partial=False
            )
            await index.add([memory("before")])
            await log.add([usage("before")])
            delete(path, how, tmp_path)
            await sessions.append(
                "alice", "after", [{"role": "user", "content": "b"}], partial=False
            )
            await index.add([memory("after")])
            await log.add([usage("after")])
            assert [info.session_id for info in await sessions.list_sessions(None, 10, 0)] == [
                "after"
            ]
            assert [r.text for r in await index.list_memories("alice", None, 10, 0)] == ["after"]
            assert [r.request_id for r in await log.since(0)] == ["after"]
        finally:
            for store in (sessions, index, log):
                await store.aclose()

    with caplog.at_level(logging.INFO, logger="memory_proxy"):
        asyncio.run(scenario())
    assert rows(path, "SELECT session_id FROM sessions") == [("after",)]
    assert rows(path, "SELECT id FROM memories") == [(memory("after").id,)]
    assert rows(path, "SELECT request_id FROM usage") == [("after",)]
    assert rows(path, "PRAGMA integrity_check") == [("ok",)]
    if how == "replaced":
        assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'restored'") != []
    said = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1, [r.getMessage() for r in said]
    assert str(path) in said[0].getMessage() and "deleted or replaced" in said[0].getMessage()


def test_a_file_that_cannot_be_made_again_fails_each_write_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rather than writing on into the deleted file: until it can be made again."""
    monkeypatch.setattr(sqlite_replaced, "CHECK_INTERVAL_SECONDS", 0.0)
    directory = tmp_path / "data"
    path = directory / "memory.sqlite3"

    async def scenario() -> None:
        sessions = SQLiteStore(path, 3600)
        try:
            shutil.rmtree(directory)
            directory.write_text("a file where the directory was")
            for _ in range(2):
                with pytest.raises(Exception, match="cannot use"):
                    await sessions.load("alice", "s")
            directory.unlink()  # the way is clear again
            await sessions.append("alice", "s", [{"role": "user", "content": "b"}], partial=False)
        finally:
            await sessions.aclose()

    asyncio.run(scenario())
    assert rows(path, "SELECT session_id FROM sessions") == [("s",)]


def test_a_running_proxy_goes_on_in_a_new_file_the_cli_can_read(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sqlite_replaced, "CHECK_INTERVAL_SECONDS", 0.0)
    _, url = fake_upstream
    path = tmp_path / "memory.sqlite3"
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}

    def sessions_in_file() -> list[tuple[object, ...]]:
        return rows(path, "SELECT session_id FROM sessions") if path.exists() else []

    with (
        caplog.at_level(logging.INFO, logger="memory_proxy"),
        run_proxy(url, memory=MemorySettings(sqlite_path=path)) as proxy,
    ):
        headers = {"x-memory-user-id": "alice", "x-session-id": "before"}
        assert httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers).is_success
        wait_until(lambda: sessions_in_file() == [("before",)])
        delete(path, "with its -wal and -shm", tmp_path)
        headers["x-session-id"] = "after"
        assert httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers).is_success
        wait_until(lambda: sessions_in_file() == [("after",)])
        listed = httpx.get(f"{proxy}/v1/sessions", headers=headers).json()["data"]
    assert [s["id"] for s in listed] == ["after"]
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(said) == 1 and str(path) in said[0]


def test_the_index_searches_the_new_file_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches have a connection of their own (beside the writes): it follows the file."""
    monkeypatch.setattr(sqlite_replaced, "CHECK_INTERVAL_SECONDS", 0.0)
    path = tmp_path / "data" / "memory.sqlite3"

    async def scenario() -> tuple[list[str], list[str]]:
        index = SQLiteMemoryIndex(path)
        try:
            await index.add([memory("heron staging database")])
            assert await index.search("alice", None, "heron", limit=5)
            delete(path, "with its -wal and -shm", tmp_path)
            await index.add([memory("falcon staging database")])
            found = [
                hit.record.text for hit in await index.search("alice", None, "falcon", limit=5)
            ]
            gone = [hit.record.text for hit in await index.search("alice", None, "heron", limit=5)]
            return found, gone
        finally:
            await index.aclose()

    assert asyncio.run(scenario()) == (["falcon staging database"], [])
