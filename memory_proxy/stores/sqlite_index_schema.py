"""The memory index's tables in the SQLite file, and the steps that bring a file written
by an earlier version up to them: migration 1 of the "memories" part (sqlite_migrations.py),
run once per file, in one transaction.

Layout. `memories` holds the records, each text packed (packed_text.py; a short one plain);
`memories_fts` is a *contentless* FTS5 index over the texts and scope tokens: it keeps only
the index, never the text, and the memory index writes it beside `memories` in the same
transaction, handing it the unpacked text (FTS5 needs the text only to index it, and to
remove a row: its 'delete' takes the values that were indexed). The index is keyed by `seq`,
an INTEGER PRIMARY KEY, because an implicit rowid may be renumbered by VACUUM.
`memory_terms` counts the memories holding each term (sqlite_term_counts.py);
`memory_vectors` their texts' vectors when recall has an embedding model
(sqlite_vectors.py), deleted with them.

Migration 1 makes the tables when missing, then applies the steps of the versions before
schema versions, each detected by what it adds (a new change is a new migration, after):
1. `add_private_flag_to_memories`: files written before private models get a `private`
   column, 0 (a hosted model's) for every memory there. A constant default: SQLite adds
   the column without rewriting a row. Two processes opening one old file may both try;
   the second finds the column there.
2. `_packed_texts`: files from before December 2026 kept each text plain, a `scope`
   column of tokens beside it, and an external-content index kept by triggers (so the
   text was stored once, but whole, and every memory took a 4 kB page of its own). The
   index is built anew as contentless, the texts packed, the scope column dropped; the old
   pages are zeroed (secure_delete) and given back after the migration. 3.7 s for 20,000
   memories here (a 95 MB file became 30 MB).

Migration 2 (`_term_counts`): files from before recall weighed words get `memory_terms`,
filled from the index (one read of each term's doclist); a file that has it already (made
before schema versions) keeps it.

Migration 3 (`VECTOR_CHANGES`): what lets a process hold a project's vectors in memory and
know when the file's have changed (sqlite_vectors.py): each vector's `added` stamp, and
one row saying the newest stamp, how many vectors were ever removed (counted by a trigger,
so no way of deleting one is missed) and a random id of the file. Vectors there before
are stamped 0.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from memory_proxy.stores import sqlite_term_counts as term_counts
from memory_proxy.stores.packed_text import pack
from memory_proxy.stores.sqlite_migrations import SQLiteMigration, run_script

logger = logging.getLogger("memory_proxy.stores")

SCHEMA = """
CREATE TABLE IF NOT EXISTS memories (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL,
    project TEXT NOT NULL,
    session_id TEXT,
    client TEXT NOT NULL,
    model TEXT,
    created_at REAL NOT NULL,
    text BLOB NOT NULL,
    private INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS memories_by_user ON memories (user_id, created_at);
CREATE INDEX IF NOT EXISTS memories_by_project ON memories (user_id, project, created_at);
CREATE INDEX IF NOT EXISTS memories_by_time ON memories (created_at);
CREATE VIRTUAL TABLE IF NOT EXISTS memories_fts USING fts5 (
    text, scope, content='', tokenize='porter unicode61'
);
CREATE TABLE IF NOT EXISTS memory_vectors (seq INTEGER PRIMARY KEY, vector BLOB NOT NULL);
"""
_CONTENTLESS_INDEX = """
CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, scope, content='', tokenize='porter unicode61'
)
"""


def _memory_tables(db: sqlite3.Connection) -> None:
    """SCHEMA, and a file from before brought up to it (inside the migration)."""
    run_script(db, SCHEMA)
    add_private_flag_to_memories(db)
    if "scope" in _columns(db, "memories"):
        _packed_texts(db)


def _has_table(db: sqlite3.Connection, name: str) -> bool:
    found = db.execute("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,))
    return found.fetchone() is not None


def _term_counts(db: sqlite3.Connection) -> None:
    """Each term's count of memories, from the index (inside the migration)."""
    if _has_table(db, term_counts.TABLE):  # made before schema versions
        return
    started = time.monotonic()
    term_counts.fill(db)
    logger.info("memory terms counted in %.1f s", time.monotonic() - started)


VECTOR_CHANGES = """
ALTER TABLE memory_vectors ADD COLUMN added INTEGER NOT NULL DEFAULT 0;
CREATE INDEX memory_vectors_by_added ON memory_vectors (added);
CREATE TABLE memory_vector_changes (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    file TEXT NOT NULL,
    added INTEGER NOT NULL,
    removed INTEGER NOT NULL
);
INSERT INTO memory_vector_changes VALUES (0, lower(hex(randomblob(8))), 0, 0);
CREATE TRIGGER memory_vectors_removed AFTER DELETE ON memory_vectors BEGIN
    UPDATE memory_vector_changes SET removed = removed + 1;
END;
"""


def _vector_changes(db: sqlite3.Connection) -> None:
    """Vectors' stamps and the row of changes (inside the migration); a file that has them
    already (its schema versions lost) keeps them."""
    if not _has_table(db, "memory_vector_changes"):
        run_script(db, VECTOR_CHANGES)


MIGRATIONS: tuple[SQLiteMigration, ...] = (
    SQLiteMigration(1, "memories and their full-text index", _memory_tables),
    SQLiteMigration(2, "each term's count of memories", _term_counts),
    SQLiteMigration(3, "what tells that vectors changed", _vector_changes),
)


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def add_private_flag_to_memories(db: sqlite3.Connection) -> None:
    """Step 1: a `private` column, 0 for every memory there."""
    if "private" in _columns(db, "memories"):
        return
    try:
        db.execute("ALTER TABLE memories ADD COLUMN private INTEGER NOT NULL DEFAULT 0")
    except sqlite3.OperationalError as exc:
        if "duplicate column" not in str(exc):
            raise


def _packed_texts(db: sqlite3.Connection) -> None:
    """Step 2: plain texts and an external-content index kept by triggers -> packed texts
    and a contentless index kept by the memory index (in the migration's transaction)."""
    (count,) = db.execute("SELECT COUNT(*) FROM memories").fetchone()
    logger.info("packing the texts of %d memories and rebuilding their index (once)", count)
    started = time.monotonic()
    db.create_function("packed", 1, pack, deterministic=True)
    db.execute("DROP TRIGGER IF EXISTS memories_indexed")
    db.execute("DROP TRIGGER IF EXISTS memories_unindexed")
    db.execute("DROP TABLE memories_fts")
    db.execute(_CONTENTLESS_INDEX)
    db.execute(
        "INSERT INTO memories_fts (rowid, text, scope) SELECT seq, text, scope FROM memories"
    )
    db.execute("UPDATE memories SET text = packed(text)")
    db.execute("ALTER TABLE memories DROP COLUMN scope")
    logger.info("memory index upgraded in %.1f s", time.monotonic() - started)
