"""Schema versions in the SQLite file (schema_versions.py): the `schema_versions` table,
and each part's pending migrations applied at open, one transaction for all of them; then
the pages a migration freed are given back and the log emptied (sqlite_space.py), so that
what a rewritten table held is not left in either file.

Several processes may open one file at once (`--workers`, the CLI beside a proxy): the
write lock is taken before the version is read again, so each migration runs once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

from memory_proxy.stores.schema_versions import Migration, failure, pending
from memory_proxy.stores.sqlite_space import empty_log, release_free_pages

SQLiteMigration = Migration[sqlite3.Connection]

_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    part TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    migrated_at REAL NOT NULL
)
"""


def version(db: sqlite3.Connection, part: str) -> int:
    """The part's schema version in the file; 0 before any (or before versions existed)."""
    row = db.execute("SELECT version FROM schema_versions WHERE part = ?", (part,)).fetchone()
    return int(row[0]) if row else 0


def migrate(
    db: sqlite3.Connection, where: str, part: str, migrations: tuple[SQLiteMigration, ...]
) -> None:
    """Applies the part's pending migrations (in autocommit mode: it opens and ends its
    own transaction); MigrationFailed, everything rolled back, when one fails."""
    db.execute(_VERSIONS)
    if not pending(where, part, version(db, part), migrations):
        return  # the usual case: no write lock taken
    db.execute("BEGIN IMMEDIATE")
    try:
        current = version(db, part)  # another process may have migrated meanwhile
        for migration in pending(where, part, current, migrations):
            try:
                migration.apply(db)
            except Exception as exc:
                raise failure(where, part, migration, current, exc) from exc
            db.execute(
                "INSERT INTO schema_versions VALUES (?, ?, ?) ON CONFLICT (part) "
                "DO UPDATE SET version = excluded.version, migrated_at = excluded.migrated_at",
                (part, migration.version, time.time()),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    release_free_pages(db)
    empty_log(db)


def run_script(db: sqlite3.Connection, script: str) -> None:
    """Each statement of `script`, inside the caller's transaction (`executescript` would
    commit it first)."""
    for statement in statements(script):
        db.execute(statement)


def statements(script: str) -> Iterator[str]:
    """The complete statements of `script`, as SQLite itself ends them."""
    pending_lines: list[str] = []
    for line in script.splitlines(keepends=True):
        pending_lines.append(line)
        text = "".join(pending_lines)
        if sqlite3.complete_statement(text):
            yield text
            pending_lines = []
    if "".join(pending_lines).strip():
        raise ValueError(f"an unfinished statement: {''.join(pending_lines)!r}")
