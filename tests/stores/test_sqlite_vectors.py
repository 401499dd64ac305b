"""Memories' vectors beside the index (recall.embedding_model): found by cosine within the
scope lexical search has (user, project, session left out, private models' memories),
added only for memories still there, and erased with their memory."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_vectors import SQLiteVectors
from tests.stores.sqlite_index_support import Index, memory


@pytest.fixture(params=["file", "in-memory"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Index]:
    """The SQLite index, in a file and in memory: vectors live beside it only."""
    opened = Index(tmp_path / "memory.sqlite3" if request.param == "file" else Path(":memory:"))
    yield opened
    opened.close()


def vectors_of(index: MemoryIndex) -> SQLiteVectors:
    assert isinstance(index, SQLiteMemoryIndex)
    return index.vectors


def embed_all(index: Index, vectors: dict[str, list[float]]) -> None:
    """Each memory's vector, keyed by its text, as the embedding writer adds them."""
    pending = index(lambda i: vectors_of(i).unembedded(0, 100))
    index(lambda i: vectors_of(i).add([(seq, vectors[text]) for seq, text in pending]))


def nearest(
    index: Index,
    vector: list[float],
    *,
    user: str = "alice",
    project: str = "shop",
    session: str | None = None,
    privacy: Privacy = "hosted",
) -> list[tuple[str, float]]:
    hits = index(
        lambda i: vectors_of(i).nearest(
            user, project, vector, limit=5, exclude_session=session, privacy=privacy
        )
    )
    return [(record.text, round(cosine, 4)) for record, cosine in hits]


DEPLOY = memory("we ship on fridays", session="monday")
LUNCH = memory("lunch is at noon", session="tuesday")


def test_the_closest_memories_come_first_with_their_cosine(index: Index) -> None:
    index.add(DEPLOY, LUNCH)
    embed_all(index, {DEPLOY.text: [1, 0, 0], LUNCH.text: [0.6, 0.8, 0]})
    assert nearest(index, [2, 0, 0]) == [(DEPLOY.text, 1.0), (LUNCH.text, 0.6)]
    assert nearest(index, [0, 0, 1]) == [(DEPLOY.text, 0.0), (LUNCH.text, 0.0)]
    assert index(lambda i: vectors_of(i).unembedded(0, 100)) == []


def test_the_scope_is_the_lexical_searchs(index: Index) -> None:
    others = [
        memory("we ship on fridays too", user="bob"),
        memory("we ship on fridays in the other project", project="blog"),
        dataclasses.replace(memory("told a private model: ship fridays"), private=True),
    ]
    index.add(DEPLOY, *others)
    embed_all(index, {r.text: [1, 0] for r in (DEPLOY, *others)})
    texts = {text for text, _ in nearest(index, [1, 0])}
    assert texts == {DEPLOY.text}
    assert {t for t, _ in nearest(index, [1, 0], privacy="mixed")} == {DEPLOY.text}
    private = {t for t, _ in nearest(index, [1, 0], privacy="private")}
    assert private == {DEPLOY.text, others[2].text}
    assert nearest(index, [1, 0], session="monday") == []


def test_a_vector_of_another_length_is_not_compared(index: Index) -> None:
    index.add(DEPLOY, LUNCH)
    embed_all(index, {DEPLOY.text: [1, 0, 0], LUNCH.text: [1, 0]})
    assert nearest(index, [1, 0]) == [(LUNCH.text, 1.0)]


def test_a_memory_forgotten_before_its_vector_arrives_gets_none(index: Index) -> None:
    index.add(DEPLOY)
    pending = index(lambda i: vectors_of(i).unembedded(0, 100))
    assert index(lambda i: i.delete("alice", DEPLOY.id))
    index(lambda i: vectors_of(i).add([(seq, [1.0]) for seq, _ in pending]))
    assert nearest(index, [1.0]) == []


def vector_rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM memory_vectors").fetchone()
    return int(count)


@pytest.mark.parametrize("how", ["memory", "project", "user"])
def test_forgetting_a_memory_erases_its_vector(tmp_path: Path, how: str) -> None:
    path = tmp_path / "memory.sqlite3"
    index = Index(path)
    try:
        index.add(DEPLOY, LUNCH)
        embed_all(index, {DEPLOY.text: [1, 0], LUNCH.text: [0, 1]})
        assert vector_rows(path) == 2
        if how == "memory":
            index(lambda i: i.delete("alice", DEPLOY.id))
            assert vector_rows(path) == 1
        elif how == "project":
            index(lambda i: i.forget_project("alice", "shop"))
        else:
            index(lambda i: i.forget_user("alice"))
        assert vector_rows(path) == (1 if how == "memory" else 0)
        assert nearest(index, [1, 0]) == ([(LUNCH.text, 0.0)] if how == "memory" else [])
    finally:
        index.close()


@settings(max_examples=25, deadline=None)
@given(
    users=st.lists(st.sampled_from(["alice", "bob", "carol"]), min_size=1, max_size=12),
    privates=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_no_memory_of_another_scope_is_ever_found(users: list[str], privates: list[bool]) -> None:
    index = Index(Path(":memory:"))
    try:
        records: list[MemoryRecord] = [
            dataclasses.replace(memory(f"fact {n}", user=user), private=private)
            for n, (user, private) in enumerate(zip(users, privates, strict=False))
        ]
        index.add(*records)
        embed_all(index, {r.text: [1.0, float(n)] for n, r in enumerate(records)})
        found = index(lambda i: vectors_of(i).nearest("alice", "shop", [1.0, 0.0], limit=50))
        expected = {r.id for r in records if r.user_id == "alice" and not r.private}
        assert {record.id for record, _ in found} == expected
    finally:
        index.close()
