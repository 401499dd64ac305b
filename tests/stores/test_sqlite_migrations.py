"""Schema versions in the SQLite file: each part's migrations run once, in order, at open;
one that fails leaves the schema it found and says so; a newer schema is refused."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from memory_proxy.stores.schema_versions import MigrationFailed
from memory_proxy.stores.sqlite import SQLiteFile, SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_migrations import SQLiteMigration, migrate, statements, version
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog


def versions(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT part, version FROM schema_versions").fetchall())


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def open_and_close(path: Path, migrations: tuple[SQLiteMigration, ...]) -> None:
    async def main() -> None:
        await SQLiteFile(path, "notes", migrations).aclose()

    asyncio.run(main())


NOTES = SQLiteMigration(1, "notes", lambda db: db.execute("CREATE TABLE notes (text TEXT)"))
TAGS = SQLiteMigration(2, "tags", lambda db: db.execute("CREATE TABLE tags (name TEXT)"))


def test_every_part_of_a_new_file_records_its_version(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"

    async def main() -> None:
        for part in (SQLiteStore(path, 60), SQLiteUsageLog(path, 10), SQLiteMemoryIndex(path)):
            await part.aclose()

    asyncio.run(main())
    assert versions(path) == {"sessions": 1, "usage": 1, "memories": 3}


def test_migrations_run_once_in_order_and_later_ones_on_a_later_open(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    open_and_close(path, (NOTES,))
    assert versions(path) == {"notes": 1}
    open_and_close(path, (NOTES,))  # nothing to do: "notes" is not made twice
    open_and_close(path, (NOTES, TAGS))
    assert versions(path) == {"notes": 2} and {"notes", "tags"} <= tables(path)


def test_a_failed_migration_leaves_the_schema_it_found_and_says_which(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    open_and_close(path, (NOTES,))

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE tags (name TEXT)")
        db.execute("ALTER TABLE notes ADD COLUMN tag TEXT")
        db.execute("INSERT INTO missing_table VALUES (1)")

    broken = SQLiteMigration(2, "tags for notes", half_done)
    with pytest.raises(MigrationFailed) as failed:
        open_and_close(path, (NOTES, broken))
    assert str(failed.value) == (
        f"memory.sqlite_path: {path}: migration 2 of its notes schema (tags for notes) failed "
        "and was rolled back, the schema is left at version 1: no such table: missing_table"
    )
    assert versions(path) == {"notes": 1} and "tags" not in tables(path)
    with sqlite3.connect(path) as db:
        assert [row[1] for row in db.execute("PRAGMA table_info(notes)")] == ["text"]
    open_and_close(path, (NOTES, TAGS))  # fixed, it applies
    assert versions(path) == {"notes": 2}


def test_a_schema_newer_than_the_proxy_knows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    open_and_close(path, (NOTES, TAGS))
    with pytest.raises(MigrationFailed, match=r"notes schema is version 2, newer than this"):
        open_and_close(path, (NOTES,))


def test_processes_opening_one_new_file_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    runs: list[int] = []

    def counted(db: sqlite3.Connection) -> None:
        runs.append(1)
        db.execute("CREATE TABLE notes (text TEXT)")

    migrations = (SQLiteMigration(1, "notes", counted),)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def opener() -> None:
        start.wait()
        try:
            db = sqlite3.connect(path, isolation_level=None, timeout=10)
            migrate(db, "here", "notes", migrations)
            assert version(db, "notes") == 1
            db.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and runs == [1]


def test_statements_are_split_where_sqlite_ends_them() -> None:
    script = "CREATE TABLE a (x TEXT DEFAULT ';');\nCREATE TABLE b (y);\n"
    assert list(statements(script)) == [
        "CREATE TABLE a (x TEXT DEFAULT ';');\n",
        "CREATE TABLE b (y);\n",
    ]
    with pytest.raises(ValueError, match="unfinished"):
        list(statements("CREATE TABLE a (x"))
