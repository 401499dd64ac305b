"""Fixtures of the store tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stores.sqlite_index_support import Index


@pytest.fixture(params=["file", "in-memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    """The SQLite memory index, in a file and in a private in-memory database."""
    path = tmp_path / "memory.sqlite3" if request.param == "file" else Path(":memory:")
    opened = Index(path)
    yield opened
    opened.close()
