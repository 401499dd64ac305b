"""Memories' vectors beside the index (recall.embedding_model): found by cosine within the
scope lexical search has (user, project, session left out, private models' memories),
added only for memories still there, and erased with their memory."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores import sqlite_replaced, sqlite_vectors
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.packed_text import unpack
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_replaced import SIDE_FILES
from memory_proxy.stores.sqlite_vectors import SQLiteVectors
from memory_proxy.stores.vector_cache import ScopeKey, ScopeVectors
from tests.stores.sqlite_index_support import LOADED_MACHINE, Index, memory
from tests.support import eventually


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


# A project's vectors held in memory (vector_cache.py): read from the file once, then only
# what was added since; never a vector its memory no longer has, whoever forgot it.


def loads(index: Index) -> int:
    """How often a project's vectors were read whole."""
    return vectors_of(index.index).cache.loads


def test_a_projects_vectors_are_read_once_then_only_those_added_since(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    index, other = Index(path), Index(path)  # another worker on the same file
    try:
        index.add(DEPLOY)
        embed_all(index, {DEPLOY.text: [1, 0]})
        assert nearest(index, [1, 0]) == [(DEPLOY.text, 1.0)]
        other.add(LUNCH)
        embed_all(other, {LUNCH.text: [0, 1]})
        assert nearest(index, [0, 1]) == [(LUNCH.text, 1.0), (DEPLOY.text, 0.0)]
        later = memory("the deploy window moved to thursdays", session="wednesday")
        index.add(later)
        embed_all(index, {later.text: [0.6, 0.8]})
        assert nearest(index, [0, 1])[1] == (later.text, 0.8)
        assert loads(index) == 1
    finally:
        index.close()
        other.close()


@pytest.mark.parametrize("forgotten_by", ["this process", "another process"])
@pytest.mark.parametrize("how", ["memory", "project", "user"])
def test_a_forgotten_memory_is_never_found_through_held_vectors(
    tmp_path: Path, forgotten_by: str, how: str
) -> None:
    path = tmp_path / "memory.sqlite3"
    index, other = Index(path), Index(path)
    try:
        index.add(DEPLOY, LUNCH)
        embed_all(index, {DEPLOY.text: [1, 0], LUNCH.text: [0.6, 0.8]})
        assert nearest(index, [1, 0]) == [(DEPLOY.text, 1.0), (LUNCH.text, 0.6)]  # held now
        forgetting = index if forgotten_by == "this process" else other
        if how == "memory":
            assert forgetting(lambda i: i.delete("alice", DEPLOY.id))
        elif how == "project":
            forgetting(lambda i: i.forget_project("alice", "shop"))
        else:
            forgetting(lambda i: i.forget_user("alice"))
        assert nearest(index, [1, 0]) == ([(LUNCH.text, 0.6)] if how == "memory" else [])
    finally:
        index.close()
        other.close()


def test_a_memory_that_takes_a_forgotten_ones_seq_is_not_found_by_its_vector(
    tmp_path: Path,
) -> None:
    path = tmp_path / "memory.sqlite3"
    index, other = Index(path), Index(path)
    try:
        index.add(LUNCH, DEPLOY)  # DEPLOY has the newest seq: a new memory takes it
        embed_all(index, {DEPLOY.text: [1, 0], LUNCH.text: [0, 1]})
        assert nearest(index, [1, 0])[0] == (DEPLOY.text, 1.0)
        assert other(lambda i: i.delete("alice", DEPLOY.id))
        other.add(memory("a new memory, not yet embedded"))
        assert nearest(index, [1, 0]) == [(LUNCH.text, 0.0)]
    finally:
        index.close()
        other.close()


def test_held_vectors_of_a_file_replaced_under_the_proxy_are_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new file's memories may have the same seqs and as many vectors added."""
    monkeypatch.setattr(sqlite_replaced, "CHECK_INTERVAL_SECONDS", 0.0)  # every call looks
    path = tmp_path / "memory.sqlite3"
    index = Index(path)
    try:
        index.add(DEPLOY)
        embed_all(index, {DEPLOY.text: [1, 0]})
        assert nearest(index, [0, 1]) == [(DEPLOY.text, 0.0)]
        for suffix in ("", *SIDE_FILES):
            Path(f"{path}{suffix}").unlink()
        index.add(LUNCH)
        embed_all(index, {LUNCH.text: [0, 1]})
        assert nearest(index, [0, 1]) == [(LUNCH.text, 1.0)]
    finally:
        index.close()


def test_reading_a_projects_vectors_goes_on_when_the_search_that_asked_gives_up(
    tmp_path: Path,
) -> None:
    """A large project takes longer to read than recall waits: the next search finds it."""
    index = Index(tmp_path / "memory.sqlite3")
    try:
        index.add(DEPLOY)
        embed_all(index, {DEPLOY.text: [1, 0]})
        cache = vectors_of(index.index).cache
        reading, go_on = threading.Event(), threading.Event()
        put = cache.put

        def slow_put(key: ScopeKey, scope: ScopeVectors) -> None:
            reading.set()
            go_on.wait(LOADED_MACHINE)
            put(key, scope)

        async def impatient(i: MemoryIndex) -> None:
            search = asyncio.ensure_future(vectors_of(i).nearest("alice", "shop", [1, 0], limit=5))
            await asyncio.get_running_loop().run_in_executor(None, reading.wait, LOADED_MACHINE)
            search.cancel()  # recall's time is up
            with contextlib.suppress(asyncio.CancelledError):
                await search
            go_on.set()
            await eventually(lambda: cache.loads == 1)

        cache.put = slow_put  # type: ignore[method-assign]
        index(impatient)
        assert nearest(index, [1, 0]) == [(DEPLOY.text, 1.0)]
        assert cache.loads == 1
    finally:
        index.close()


@settings(max_examples=20, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["add", "forget", "search"]),
            st.booleans(),  # by the other process
            st.integers(0, 5),  # which memory
            st.sampled_from([(1.0, 0.0), (0.6, 0.8), (0.0, 1.0)]),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_held_vectors_find_what_the_file_holds_whoever_changed_it(
    steps: list[tuple[str, bool, int, tuple[float, float]]],
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "memory.sqlite3"
        index, other = Index(path), Index(path)
        try:
            for action, by_other, n, vector in steps:
                acting = other if by_other else index
                fact = memory(f"fact {n}", session=f"s{n % 2}")
                if action == "add":
                    acting.add(fact)
                    embed_all(acting, {fact.text: list(vector)})
                elif action == "forget":
                    acting(functools.partial(forget, fact))
                found = nearest(index, [1.0, 0.0], session="s1")
                assert sorted(found) == sorted(brute_force(path, [1.0, 0.0], "s1"))
        finally:
            index.close()
            other.close()


async def forget(fact: MemoryRecord, index: MemoryIndex) -> None:
    await index.delete("alice", fact.id)


def brute_force(path: Path, question: list[float], exclude_session: str) -> list[tuple[str, float]]:
    """Every vector of alice's shop in the file, its cosine with the unit `question`."""
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT m.text, v.vector FROM memories m JOIN memory_vectors v ON v.seq = m.seq "
            "WHERE m.user_id = 'alice' AND m.project = 'shop' AND m.session_id IS NOT ?",
            (exclude_session,),
        ).fetchall()
    found = [
        (unpack(text), round(float(np.frombuffer(blob, dtype=np.float32) @ question), 4))
        for text, blob in rows
    ]
    return sorted(found, key=lambda hit: -hit[1])[:5]


def test_a_search_reads_the_vectors_added_since_and_the_memories_found_by_their_keys(
    tmp_path: Path,
) -> None:
    """Not the project's index, which holds every memory of the project."""
    index = Index(tmp_path / "memory.sqlite3")
    try:
        plans = {}
        for name, statement, params in (
            ("added since", sqlite_vectors._ADDED_SINCE, ("alice", "shop", 8, 3)),
            ("found", sqlite_vectors._FOUND, ("[1, 2]", "alice", "shop", None, 0)),
        ):
            rows = index.sqlite._db.execute(f"EXPLAIN QUERY PLAN {statement}", params)
            plans[name] = " / ".join(row[3] for row in rows)
        assert plans == {
            "added since": "SEARCH v USING INDEX memory_vectors_by_added (added>?) / "
            "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
            "found": "SCAN found VIRTUAL TABLE INDEX 1: / "
            "SEARCH m USING INTEGER PRIMARY KEY (rowid=?)",
        }
    finally:
        index.close()
