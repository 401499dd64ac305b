"""A project's vectors held in memory: searched with the scope's masks (session left out,
private models' memories), kept current by appending, known stale after any removal or in
another file, and held within a budget of bytes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from memory_proxy.stores.vector_cache import FileState, Row, ScopeVectors, VectorCache

STATE = FileState("f1", added=3, removed=0)


def row(seq: int, vector: list[float], session: str | None = "s1", private: bool = False) -> Row:
    return (seq, np.asarray(vector, dtype=np.float32).tobytes(), session, int(private))


def held(*rows: Row, state: FileState = STATE) -> ScopeVectors:
    scope = ScopeVectors(2, state)
    scope.append(list(rows), state.added)
    return scope


def closest(
    scope: ScopeVectors,
    question: list[float],
    limit: int = 5,
    session: str | None = None,
    private_too: bool = False,
) -> list[tuple[int, float]]:
    found = scope.closest(
        np.asarray(question, dtype=np.float32),
        limit,
        exclude_session=session,
        private_too=private_too,
    )
    return [(seq, round(cosine, 3)) for seq, cosine in found]


def test_the_closest_first_within_the_limit() -> None:
    scope = held(row(1, [1, 0]), row(2, [0.6, 0.8]), row(3, [0, 1]))
    assert closest(scope, [1, 0]) == [(1, 1.0), (2, 0.6), (3, 0.0)]
    assert closest(scope, [0, 1], limit=2) == [(3, 1.0), (2, 0.8)]
    assert closest(scope, [0, 1], limit=0) == []


def test_the_session_left_out_and_private_models_memories_only_when_allowed() -> None:
    scope = held(row(1, [1, 0], "now"), row(2, [0.6, 0.8], "before"), row(3, [1, 0], None, True))
    assert closest(scope, [1, 0], session="now") == [(2, 0.6)]
    assert closest(scope, [1, 0], session="now", private_too=True) == [(3, 1.0), (2, 0.6)]
    assert closest(scope, [1, 0], session="never seen") == [(1, 1.0), (2, 0.6)]


def test_vectors_appended_later_are_found_and_a_seq_held_takes_its_new_vector() -> None:
    scope = held(row(1, [1, 0]))
    scope.append([row(n, [0, 1]) for n in range(2, 200)] + [row(1, [0.6, 0.8])], added=4)
    assert len(scope) == 199
    assert scope.state == FileState("f1", 4, 0)
    assert closest(scope, [1, 0], limit=1) == [(1, 0.6)]


def test_held_vectors_are_stale_after_any_removal_or_in_another_file() -> None:
    scope = held(row(1, [1, 0]))
    assert scope.current(STATE)
    assert scope.current(FileState("f1", added=9, removed=0))  # more added: appended
    assert not scope.current(FileState("f1", added=3, removed=1))
    assert not scope.current(FileState("f2", added=3, removed=0))
    assert not scope.current(FileState("f1", added=2, removed=0))  # an older copy of the file


def test_the_least_recently_searched_projects_go_first_but_the_newest_stays() -> None:
    one = held(row(1, [1, 0]))
    cache = VectorCache(max_bytes=2 * one.nbytes)
    cache.put(("alice", "a", 2), one)
    cache.put(("alice", "b", 2), held(row(1, [1, 0])))
    assert cache.get(("alice", "a", 2)) is one  # now the most recently searched
    cache.put(("alice", "c", 2), held(row(1, [1, 0])))
    assert cache.get(("alice", "b", 2)) is None
    assert cache.get(("alice", "a", 2)) is one
    alone = VectorCache(max_bytes=1)
    alone.put(("alice", "a", 2), one)
    assert alone.get(("alice", "a", 2)) is one
    assert cache.loads == 3


@settings(max_examples=50, deadline=None)
@given(
    vectors=st.lists(
        st.tuples(st.integers(-3, 3), st.integers(-3, 3), st.sampled_from(["s1", "s2", None])),
        min_size=1,
        max_size=40,
    ),
    limit=st.integers(1, 45),
    private_too=st.booleans(),
)
def test_the_same_as_sorting_every_cosine(
    vectors: list[tuple[int, int, str | None]], limit: int, private_too: bool
) -> None:
    rows = [row(seq, [x, y], session, seq % 3 == 0) for seq, (x, y, session) in enumerate(vectors)]
    question = np.asarray([0.6, 0.8], dtype=np.float32)
    scope = ScopeVectors(2, STATE)
    for start in range(0, len(rows), 7):  # appended in pieces, as vectors arrive
        scope.append(rows[start : start + 7], STATE.added)
    found = scope.closest(question, limit, exclude_session="s2", private_too=private_too)
    expected = sorted(
        (
            (seq, float(np.dot([x, y], question)))
            for seq, (x, y, session) in enumerate(vectors)
            if session != "s2" and (private_too or seq % 3)
        ),
        key=lambda hit: -hit[1],
    )[:limit]
    assert [round(c, 4) for _, c in found] == [round(c, 4) for _, c in expected]
    assert {seq for seq, _ in found} <= {seq for seq, _ in enumerate(vectors)}
