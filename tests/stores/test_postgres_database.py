"""The PostgreSQL database behind `memory.store: postgres`: unreachable at start it says
where (never the password); each part's migrations run once, in order, even for proxies
starting together; one that fails leaves the schema it found and says so."""

from __future__ import annotations

import threading

import psycopg
import pytest

from memory_proxy.stores.base import StoreUnavailable
from memory_proxy.stores.postgres_database import PostgresMigration, migrate
from memory_proxy.stores.schema_versions import MigrationFailed
from tests.support import free_port

NOTES = PostgresMigration(1, "notes", lambda db: db.execute("CREATE TABLE notes (text text)"))
TAGS = PostgresMigration(2, "tags", lambda db: db.execute("CREATE TABLE tags (name text)"))


def versions(url: str) -> dict[str, int]:
    with psycopg.connect(url) as db:
        return dict(db.execute("SELECT part, version FROM schema_versions").fetchall())


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as db:
        rows = db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchall()
        return {name for (name,) in rows}


def test_an_unreachable_database_is_named_without_its_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://team:s3cret-pass@127.0.0.1:{port}/memory"
    with pytest.raises(StoreUnavailable) as unreachable:
        migrate(url, "notes", (NOTES,))
    message = str(unreachable.value)
    assert message.startswith(
        f"memory.postgres_url: cannot use PostgreSQL at 127.0.0.1:{port} "
        f"(postgresql://team:***@127.0.0.1:{port}/memory): "
    )
    assert "Connection refused" in message and "s3cret-pass" not in message


def test_migrations_run_once_in_order_and_later_ones_on_a_later_start(postgres_url: str) -> None:
    migrate(postgres_url, "notes", (NOTES,))
    migrate(postgres_url, "notes", (NOTES,))  # nothing to do: "notes" is not made twice
    assert versions(postgres_url) == {"notes": 1}
    migrate(postgres_url, "notes", (NOTES, TAGS))
    assert versions(postgres_url) == {"notes": 2} and {"notes", "tags"} <= tables(postgres_url)


def test_a_failed_migration_leaves_the_schema_it_found_and_says_which(postgres_url: str) -> None:
    migrate(postgres_url, "notes", (NOTES,))

    def half_done(db: psycopg.Connection) -> None:
        db.execute("CREATE TABLE tags (name text)")
        db.execute("ALTER TABLE notes ADD COLUMN tag text")
        db.execute("INSERT INTO missing_table VALUES (1)")

    broken = PostgresMigration(2, "tags for notes", half_done)
    with pytest.raises(MigrationFailed) as failed:
        migrate(postgres_url, "notes", (NOTES, broken))
    assert "migration 2 of its notes schema (tags for notes) failed and was rolled back, " in str(
        failed.value
    )
    assert 'the schema is left at version 1: relation "missing_table" does not exist' in str(
        failed.value
    )
    assert versions(postgres_url) == {"notes": 1} and "tags" not in tables(postgres_url)
    with psycopg.connect(postgres_url) as db:
        columns = db.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'notes'"
        ).fetchall()
    assert columns == [("text",)]
    migrate(postgres_url, "notes", (NOTES, TAGS))
    assert versions(postgres_url) == {"notes": 2}


def test_a_schema_newer_than_the_proxy_knows_is_refused(postgres_url: str) -> None:
    migrate(postgres_url, "notes", (NOTES, TAGS))
    with pytest.raises(MigrationFailed, match=r"notes schema is version 2, newer than this"):
        migrate(postgres_url, "notes", (NOTES,))


def test_proxies_starting_together_migrate_once(postgres_url: str) -> None:
    runs: list[int] = []

    def counted(db: psycopg.Connection) -> None:
        runs.append(1)
        db.execute("CREATE TABLE notes (text text)")

    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def starting() -> None:
        start.wait()
        try:
            migrate(postgres_url, "notes", (PostgresMigration(1, "notes", counted),))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=starting) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and runs == [1]
