"""The tests' PostgreSQL (tests/postgres_support.py): a server that is not root's (CI runs
as root, and PostgreSQL refuses it), a schema per test, and data kept across a restart."""

from __future__ import annotations

from pathlib import Path

import psutil
import psycopg

from tests.postgres_support import PostgresServer


def test_the_server_is_not_roots(postgres_server: PostgresServer) -> None:
    pid = int((Path(postgres_server.data_directory) / "postmaster.pid").read_text().split()[0])
    assert psutil.Process(pid).uids().real != 0


def test_each_test_has_a_schema_of_its_own(postgres_server: PostgresServer) -> None:
    first, second = postgres_server.schema_url(), postgres_server.schema_url()
    with psycopg.connect(first) as db:
        db.execute("CREATE TABLE notes (text text)")
    with psycopg.connect(second) as db:
        db.execute("CREATE TABLE notes (text text)")  # no clash: another schema
        row = db.execute("SELECT current_schema(), current_user").fetchone()
    assert row is not None and row[0].startswith("test_") and row[1] == "postgres"


def test_a_restart_keeps_the_data(postgres_server: PostgresServer, postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as db:
        db.execute("CREATE TABLE notes (text text)")
        db.execute("INSERT INTO notes VALUES ('kept')")
    postgres_server.stop()
    postgres_server.start()
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT text FROM notes").fetchall() == [("kept",)]
