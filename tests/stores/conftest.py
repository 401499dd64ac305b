"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stores.sqlite_index_support import BlankIndexes, Index


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
def blank_index(request: pytest.FixtureRequest) -> Iterator[BlankIndexes]:
    """A blank index per hypothesis example (`with blank_index() as index:`): SQLite in
    memory, or one PostgreSQL index emptied each time."""
    where: Path | str = Path(":memory:")
    if request.param == "postgres":
        where = request.getfixturevalue("postgres_url")
    indexes = BlankIndexes(where)
    yield indexes
    indexes.close()
