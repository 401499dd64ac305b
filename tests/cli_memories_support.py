"""Memories for the `memory-proxy memories` tests: written to a real SQLite file, the
command run on it, its JSON lines read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner, Result

from memory_proxy.cli.main import main
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

PORT = "User: which port does staging use?\nAssistant: The staging database runs on port 5433."


def memory(
    text: str,
    *,
    user: str = "default-dev",
    project: str = "shop",
    at: float = 1.0,
    session: str | None = "s1",
    model: str | None = "m",
    private: bool = False,
) -> MemoryRecord:
    identifier = memory_id(user, project, text)
    return MemoryRecord(identifier, user, project, session, "claude-cli", model, at, text, private)


def store(tmp_path: Path, name: str, *records: MemoryRecord) -> Path:
    """A config naming its own SQLite file, holding `records`."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(f"memory:\n  sqlite_path: {tmp_path / name}.sqlite3\n")

    async def add() -> None:
        index = SQLiteMemoryIndex(tmp_path / f"{name}.sqlite3")
        try:
            await index.add(list(records))
        finally:
            await index.aclose()

    asyncio.run(add())
    return config


def run(config: Path, *arguments: str, given: str | None = None) -> Result:
    return CliRunner().invoke(main, ["memories", "--config", str(config), *arguments], input=given)


def json_lines(output: str) -> list[dict[str, Any]]:
    """One object a line; not str.splitlines, which also splits at U+2028 inside text."""
    return [orjson.loads(line) for line in output.split("\n") if line]
