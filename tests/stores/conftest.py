"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stores.sqlite_index_support import Index


@pytest.fixture(params=["file", "in-memory", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    """Each memory index: SQLite in a file and in a private in-memory database, and
    PostgreSQL."""
    where: Path | str = tmp_path / "memory.sqlite3"
    if request.param == "in-memory":
        where = Path(":memory:")
    elif request.param == "postgres":
        where = request.getfixturevalue("postgres_url")
    opened = Index(where)
    yield opened
    opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def blank_index_at(request: pytest.FixtureRequest) -> Path | str:
    """Where a hypothesis test opens a blank index per example (Index.blank): SQLite in
    memory, or one PostgreSQL schema emptied each time."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return Path(":memory:")
