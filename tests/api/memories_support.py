"""Memories for the memories API's tests, written where a proxy of `run_proxy` finds them,
and its answers read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

NO_LITELLM = "http://127.0.0.1:9"  # the memories API never calls it
MEMORY_FILE = Path("data/memory.sqlite3")  # the default store, in each test's own directory
ALICE = {"x-memory-user-id": "alice"}
BOB = {"x-memory-user-id": "bob"}
PORT = "User: which port does staging use?\nAssistant: The staging database runs on port 5433."
DEPLOY = "User: how do we deploy?\nAssistant: Merge to main; the pipeline deploys staging."
LUNCH = "User: lunch?\nAssistant: Pizza on Friday."


def memory(
    text: str, *, user: str = "alice", project: str = "shop", at: float = 1.0
) -> MemoryRecord:
    return MemoryRecord(
        memory_id(user, project, text), user, project, "s1", "claude-cli", "m", at, text
    )


def remember(*records: MemoryRecord) -> None:
    """Straight into the proxy's file, as another worker of the proxy would."""

    async def add() -> None:
        index = SQLiteMemoryIndex(MEMORY_FILE)
        try:
            await index.add(list(records))
        finally:
            await index.aclose()

    asyncio.run(add())


def texts(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["text"] for item in answer.json()["data"]]


def get(proxy: str, path: str, headers: dict[str, str] = ALICE, **params: str) -> httpx.Response:
    return httpx.get(proxy + path, params=params, headers=headers)


def delete(proxy: str, path: str, headers: dict[str, str] = ALICE, **params: str) -> httpx.Response:
    return httpx.delete(proxy + path, params=params, headers=headers)


def openai_error(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == str(status)
    message: str = error["message"]
    return message


SHOP = [memory(f"shop fact {n}", at=n) for n in (1, 2, 3)]
GENERAL = memory("general fact", project="", at=4)
BLOG = memory("blog fact", project="blog", at=5)
BOBS = memory("bob's shop fact", user="bob", at=6)
