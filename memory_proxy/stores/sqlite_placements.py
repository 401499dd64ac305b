"""Where each conversation's recalled blocks went, in the SQLite file beside its memories,
so that every `--workers` process puts the same block back at the same turn
(memory/placed_blocks.py). A row names the block's memories, never their text: a memory
forgotten is gone from every block that quoted it, which then is not put back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson

from memory_proxy.records.memory import MemoryRecord, PlacedBlock
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_index_sql import RECORD_COLUMNS
from memory_proxy.stores.sqlite_index_sql import record as _record
from memory_proxy.stores.sqlite_migrations import SQLiteMigration, run_script

# A conversation's blocks matter while its prefix is cached (an hour at most): a day
# after it was placed, a block is dropped; a conversation keeps its latest turns' blocks.
KEEP_SECONDS = 86_400
PER_CONVERSATION = 32
_SCHEMA = """
CREATE TABLE placed_blocks (
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    turn INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    suffix TEXT NOT NULL,
    max_chars INTEGER NOT NULL,
    private INTEGER NOT NULL,
    memory_ids TEXT NOT NULL,
    placed_at REAL NOT NULL,
    PRIMARY KEY (user_id, session_id, turn)
) WITHOUT ROWID;
CREATE INDEX placed_blocks_by_time ON placed_blocks (placed_at);
"""
MIGRATIONS: tuple[SQLiteMigration, ...] = (
    SQLiteMigration(1, "recalled blocks placed", lambda db: run_script(db, _SCHEMA)),
)
_COLUMNS = "turn, text_hash, suffix, max_chars, private, memory_ids"


class SQLitePlacements:
    """The Placements of the SQLite file at `path` (its memories index's)."""

    def __init__(self, path: Path) -> None:
        self._file = SQLiteFile(path, "placements", MIGRATIONS)

    async def placed(
        self, user_id: str, session_id: str
    ) -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
        def work() -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
            db = self._file.db
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM placed_blocks WHERE user_id = ? AND session_id = ?",
                (user_id, session_id),
            ).fetchall()
            return [(block, _records(db, block.memory_ids)) for block in map(_block, rows)]

        return await self._file.run(work)

    async def place(self, user_id: str, session_id: str, block: PlacedBlock, now: float) -> None:
        def work() -> None:
            with self._file.transaction() as db:
                db.execute(
                    f"INSERT OR REPLACE INTO placed_blocks ({_COLUMNS}, user_id, session_id, "
                    "placed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_row(block), user_id, session_id, now),
                )
                db.execute(
                    "DELETE FROM placed_blocks WHERE user_id = ? AND session_id = ? AND turn <= "
                    "(SELECT turn FROM placed_blocks WHERE user_id = ? AND session_id = ? "
                    "ORDER BY turn DESC LIMIT 1 OFFSET ?)",
                    (user_id, session_id, user_id, session_id, PER_CONVERSATION),
                )
                db.execute("DELETE FROM placed_blocks WHERE placed_at < ?", (now - KEEP_SECONDS,))

        await self._file.run(work)

    async def drop(self, user_id: str, session_id: str, turns: list[int]) -> None:
        def work() -> None:
            with self._file.transaction() as db:
                db.execute(
                    "DELETE FROM placed_blocks WHERE user_id = ? AND session_id = ? "
                    "AND turn IN (SELECT value FROM json_each(?))",
                    (user_id, session_id, orjson.dumps(turns).decode()),
                )

        await self._file.run(work)

    async def aclose(self) -> None:
        await self._file.aclose()


def _row(block: PlacedBlock) -> tuple[object, ...]:
    ids = orjson.dumps(block.memory_ids).decode()
    return (block.turn, block.text_hash, block.suffix, block.max_chars, block.private, ids)


def _block(row: tuple[object, ...]) -> PlacedBlock:
    turn, text_hash, suffix, max_chars, private, ids = row
    assert isinstance(ids, str)
    return PlacedBlock(
        int(str(turn)),
        str(text_hash),
        str(suffix),
        int(str(max_chars)),
        bool(private),
        tuple(orjson.loads(ids)),
    )


def _records(db: sqlite3.Connection, ids: tuple[str, ...]) -> dict[str, MemoryRecord]:
    """Those of the memories `ids` that are still there."""
    rows = db.execute(
        f"SELECT {RECORD_COLUMNS} FROM memories WHERE id IN (SELECT value FROM json_each(?))",
        (orjson.dumps(ids).decode(),),
    ).fetchall()
    return {record.id: record for record in map(_record, rows)}
