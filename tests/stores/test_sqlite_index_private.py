"""Private models' memories in the SQLite index: marked, found only for requests to private
models (filtered in the SQL, before the limit), and files from before migrated at open."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores.base import MemoryIndex
from tests.stores.sqlite_index_support import Index, memory


def private(record: MemoryRecord) -> MemoryRecord:
    return dataclasses.replace(record, private=True)


def found(
    index: Index, user: str | None, privacy: Privacy, limit: int = 5, session: str | None = None
) -> list[str]:
    hits = index(
        lambda i: i.search(
            user, "shop", "staging database", limit=limit, exclude_session=session, privacy=privacy
        )
    )
    return [hit.record.text for hit in hits]


HOSTED = memory("the staging database is heron-17", session="monday")
TOLD_LLAMA = private(memory("the staging database password is osprey-42", session="tuesday"))


@pytest.mark.parametrize("user", ["alice", None])  # recall's search, and the API's of everyone
def test_a_private_models_memories_are_found_for_private_requests_only(
    index: Index, user: str | None
) -> None:
    index.add(HOSTED, TOLD_LLAMA)
    assert found(index, user, "hosted") == [HOSTED.text]
    assert found(index, user, "mixed") == [HOSTED.text]
    assert sorted(found(index, user, "private")) == sorted([HOSTED.text, TOLD_LLAMA.text])
    assert found(index, user, "hosted", session="x") == [HOSTED.text]


def test_the_filter_is_in_the_sql_before_the_limit(index: Index) -> None:
    """Twenty private memories that match better than the one hosted memory: a hosted
    request still gets the hosted one, not an empty page of private ones filtered away."""
    told = [private(memory(f"staging database {n}", session=f"s{n}")) for n in range(20)]
    index.add(*told, HOSTED)
    assert found(index, "alice", "private", limit=3)[0] != HOSTED.text  # they do rank first
    assert found(index, "alice", "hosted", limit=1) == [HOSTED.text]
    assert found(index, None, "hosted", limit=1) == [HOSTED.text]


def test_the_flag_is_kept_listed_read_and_exported(index: Index) -> None:
    index.add(HOSTED, TOLD_LLAMA)
    listed = index(lambda i: i.list_memories(None, None, 10, 0))
    assert {record.text: record.private for record in listed} == {
        HOSTED.text: False,
        TOLD_LLAMA.text: True,
    }
    assert index(lambda i: i.get(None, TOLD_LLAMA.id)) == TOLD_LLAMA
    assert TOLD_LLAMA.describe()["private"] is True and HOSTED.describe()["private"] is False

    async def exported(i: MemoryIndex) -> list[MemoryRecord]:
        return [record async for batch in i.export(None, None) for record in batch]

    assert index(exported) == [HOSTED, TOLD_LLAMA]


def test_a_file_from_before_private_models_is_migrated_at_open(tmp_path: Path) -> None:
    """A file as main at cc0445f left it (no `private` column): its memories were all
    hosted models' and stay so, findable; new ones can be private; a second opening finds
    the column there."""
    path = tmp_path / "memory.sqlite3"
    before = Index(path)
    before.add(HOSTED)
    before.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE memories DROP COLUMN private")
        db.execute("DROP TABLE schema_versions")  # cc0445f kept none
    for _ in range(2):
        migrated = Index(path)
        try:
            migrated.add(TOLD_LLAMA)
            assert found(migrated, "alice", "hosted") == [HOSTED.text]
            assert sorted(found(migrated, "alice", "private")) == [HOSTED.text, TOLD_LLAMA.text]
        finally:
            migrated.close()
