"""Where each conversation's recalled blocks went, in PostgreSQL beside its memories, so
that every proxy and worker on the database puts the same block back at the same turn
(memory/placed_blocks.py). As in the SQLite file (sqlite_placements.py, whose limits it
keeps), a row names the block's memories, never their text.

Reading a conversation's blocks is on the request path: two statements (the blocks, then
their memories), within recall's budget (their statement timeout)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from memory_proxy.records.memory import MemoryRecord, PlacedBlock
from memory_proxy.stores.postgres_database import PostgresDatabase, PostgresMigration, run_script
from memory_proxy.stores.postgres_index import RECORD_COLUMNS, record_of
from memory_proxy.stores.sqlite_placements import KEEP_SECONDS, PER_CONVERSATION

_SCHEMA = """
CREATE TABLE placed_blocks (
    user_id text NOT NULL,
    session_id text NOT NULL,
    turn integer NOT NULL,
    text_hash text NOT NULL,
    suffix text NOT NULL,
    max_chars integer NOT NULL,
    private boolean NOT NULL,
    memory_ids text[] NOT NULL,
    placed_at double precision NOT NULL,
    PRIMARY KEY (user_id, session_id, turn)
);
CREATE INDEX placed_blocks_by_time ON placed_blocks (placed_at);
"""
MIGRATIONS: tuple[PostgresMigration, ...] = (
    PostgresMigration(1, "recalled blocks placed", lambda db: run_script(db, _SCHEMA)),
)
_COLUMNS = "turn, text_hash, suffix, max_chars, private, memory_ids"
_PLACED = f"SELECT {_COLUMNS} FROM placed_blocks WHERE user_id = %s AND session_id = %s"
_PLACE = f"""
INSERT INTO placed_blocks ({_COLUMNS}, user_id, session_id, placed_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (user_id, session_id, turn) DO UPDATE SET text_hash = excluded.text_hash,
    suffix = excluded.suffix, max_chars = excluded.max_chars, private = excluded.private,
    memory_ids = excluded.memory_ids, placed_at = excluded.placed_at
"""
WAIT_SECONDS = 5.0  # writes, after the request is on its way


class PostgresPlacements:
    """The Placements in the database at `url`; `read_budget`: the seconds a read of a
    conversation's blocks may take (recall.timeout_ms)."""

    def __init__(self, url: str, read_budget: float) -> None:
        self._read_budget = read_budget
        self._db = PostgresDatabase(
            url,
            "placements",
            MIGRATIONS,
            max_size=4,
            statement_timeout_ms=max(1, round(read_budget * 1000)),
        )

    async def placed(
        self, user_id: str, session_id: str
    ) -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
        async def work(db: AsyncConnection) -> list[tuple[PlacedBlock, dict[str, MemoryRecord]]]:
            cursor = await db.execute(_PLACED, (user_id, session_id))
            blocks = [
                PlacedBlock(turn, text_hash, suffix, max_chars, private, tuple(ids))
                for turn, text_hash, suffix, max_chars, private, ids in await cursor.fetchall()
            ]
            if not blocks:
                return []
            wanted = list({memory_id for block in blocks for memory_id in block.memory_ids})
            cursor = await db.execute(
                f"SELECT {RECORD_COLUMNS} FROM memories WHERE id = ANY(%s)", (wanted,)
            )
            records = {r.id: r for r in map(record_of, await cursor.fetchall())}
            return [(b, {i: records[i] for i in b.memory_ids if i in records}) for b in blocks]

        return await self._db.read(work, self._read_budget)

    async def place(self, user_id: str, session_id: str, block: PlacedBlock, now: float) -> None:
        async with self._db.connection(WAIT_SECONDS) as db, db.transaction():
            await db.execute(_PLACE, (*_row(block), user_id, session_id, now))
            await db.execute(
                "DELETE FROM placed_blocks WHERE user_id = %s AND session_id = %s AND turn <= "
                "(SELECT turn FROM placed_blocks WHERE user_id = %s AND session_id = %s "
                "ORDER BY turn DESC OFFSET %s LIMIT 1)",
                (user_id, session_id, user_id, session_id, PER_CONVERSATION),
            )
            await db.execute(
                "DELETE FROM placed_blocks WHERE placed_at < %s", (now - KEEP_SECONDS,)
            )

    async def drop(self, user_id: str, session_id: str, turns: list[int]) -> None:
        async with self._db.connection(WAIT_SECONDS) as db:
            await db.execute(
                "DELETE FROM placed_blocks WHERE user_id = %s AND session_id = %s "
                "AND turn = ANY(%s)",
                (user_id, session_id, turns),
            )

    async def aclose(self) -> None:
        await self._db.aclose()


def _row(block: PlacedBlock) -> tuple[Any, ...]:
    b = block
    return (b.turn, b.text_hash, b.suffix, b.max_chars, b.private, list(b.memory_ids))
