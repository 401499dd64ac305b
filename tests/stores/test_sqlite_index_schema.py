"""A file written by the versions before packed text (cc0445f to e2844d3) keeps working:
opened, its memories are packed and indexed anew, once, and are then listed, searched,
forgotten (and erased) as any others; its sessions are read as they are."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import orjson

from memory_proxy.records.memory import memory_id
from memory_proxy.stores.sqlite import SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_index_scope import index_scope
from tests.stores.file_traces import traces, unique_token

# What e2844d3 wrote (stores/sqlite.py and stores/sqlite_index.py), as it wrote it.
OLD_LAYOUT = """
PRAGMA journal_mode=WAL;
CREATE TABLE sessions (
    user_id TEXT NOT NULL, session_id TEXT NOT NULL, created REAL NOT NULL,
    updated REAL NOT NULL, message_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, session_id)
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, session_id TEXT NOT NULL,
    message TEXT NOT NULL,
    FOREIGN KEY (user_id, session_id) REFERENCES sessions ON DELETE CASCADE
);
CREATE INDEX messages_by_session ON messages (user_id, session_id, id);
CREATE INDEX sessions_by_update ON sessions (updated);
CREATE TABLE memories (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL,
    project TEXT NOT NULL, session_id TEXT, client TEXT NOT NULL, model TEXT,
    created_at REAL NOT NULL, text TEXT NOT NULL, scope TEXT NOT NULL
);
CREATE INDEX memories_by_user ON memories (user_id, created_at);
CREATE INDEX memories_by_project ON memories (user_id, project, created_at);
CREATE INDEX memories_by_time ON memories (created_at);
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, scope, content='memories', content_rowid='seq', tokenize='porter unicode61'
);
CREATE TRIGGER memories_indexed AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text, scope) VALUES (new.seq, new.text, new.scope);
END;
CREATE TRIGGER memories_unindexed AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text, scope)
    VALUES ('delete', old.seq, old.text, old.scope);
END;
"""


def old_file(path: Path, texts: list[tuple[str, str, str]]) -> None:
    """(user, project, text) memories, and one session, as the old version kept them."""
    with sqlite3.connect(path, isolation_level=None) as db:
        db.executescript(OLD_LAYOUT)
        db.executemany(
            "INSERT INTO memories (id, user_id, project, session_id, client, model, "
            "created_at, text, scope) VALUES (?, ?, ?, 's1', 'claude-cli', 'm', ?, ?, ?)",
            [
                (memory_id(user, project, text), user, project, 1000.0 + n, text, scope)
                for n, (user, project, text) in enumerate(texts)
                for scope in [index_scope(user, project)]
            ],
        )
        db.execute("INSERT INTO sessions VALUES ('alice', 'old', 1e12, 1e12, 1)")
        message = orjson.dumps({"role": "user", "content": "kept as it was"}).decode()
        db.execute(
            "INSERT INTO messages (user_id, session_id, message) VALUES (?, ?, ?)",
            ("alice", "old", message),
        )


def columns(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[1] for row in db.execute("PRAGMA table_info(memories)")]


def test_a_file_of_the_old_layout_is_upgraded_once_and_then_works_as_any(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    secret, kept = unique_token(), unique_token()
    forgotten_text = f"User: the old password is {secret}\nAssistant: noted"
    texts = [
        ("alice", "shop", f"User: staging port {n}?\nAssistant: 5433 {kept}") for n in range(30)
    ]
    old_file(path, [*texts, ("mallory", "vault", forgotten_text)])
    assert traces(path, secret) > 0

    async def scenario() -> None:
        index = SQLiteMemoryIndex(path)
        sessions = SQLiteStore(path, 3600)
        try:
            assert len(await index.list_memories(None, None, 100, 0)) == 31
            hits = await index.search("alice", "shop", "staging port", limit=3)
            assert len(hits) == 3 and all(kept in hit.record.text for hit in hits)
            found = await index.search("mallory", None, secret, limit=3)
            assert [hit.record.text for hit in found] == [forgotten_text]
            assert await sessions.load("alice", "old") == [
                {"role": "user", "content": "kept as it was"}
            ]

            assert await index.delete(None, memory_id("mallory", "vault", forgotten_text))

            assert traces(path, secret) == 0
            assert await index.search("mallory", None, secret, limit=3) == []
        finally:
            await sessions.aclose()
            await index.aclose()

    asyncio.run(scenario())
    assert "scope" not in columns(path)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # small: switched at open
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        db.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
        texts_stored = {type(text) for (text,) in db.execute("SELECT text FROM memories")}
    assert texts_stored == {bytes}
    assert traces(path, kept) > 0

    async def reopened() -> int:  # a second open finds nothing to upgrade
        index = SQLiteMemoryIndex(path)
        try:
            return len(await index.search("alice", "shop", "staging port", limit=50))
        finally:
            await index.aclose()

    assert asyncio.run(reopened()) == 30


def test_a_file_with_private_memories_keeps_them_private_through_the_upgrade(
    tmp_path: Path,
) -> None:
    """The layout of ad64b6f: the old one plus a `private` column (step 1 ran before)."""
    path = tmp_path / "memory.sqlite3"
    told = "User: the private plan\nAssistant: noted"
    old_file(path, [("alice", "shop", told), ("alice", "shop", "User: lunch?\nAssistant: pizza")])
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE memories ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
        db.execute("UPDATE memories SET private = 1 WHERE text = ?", (told,))

    async def scenario() -> list[tuple[str, bool]]:
        index = SQLiteMemoryIndex(path)
        try:
            assert await index.search("alice", "shop", "private plan", limit=5) == []
            hits = await index.search("alice", "shop", "private plan", limit=5, privacy="private")
            assert [hit.record.text for hit in hits] == [told]
            listed = await index.list_memories(None, None, 10, 0)
            return sorted((r.text, r.private) for r in listed)
        finally:
            await index.aclose()

    assert asyncio.run(scenario()) == [("User: lunch?\nAssistant: pizza", False), (told, True)]
    assert "scope" not in columns(path)
