"""A recall search on PostgreSQL is one statement (one round trip: the counts, the choice
of words and the ranking together), and with more memories than a search may rank it
chooses its words as SQLite's index does: the rarer ones ORed, the fewest ANDed whose
matches it can afford, or all of them ANDed; each case returns SQLite's hits, and so
does any question."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord, Recalled
from memory_proxy.stores.search_terms import MATCHED_MEMORIES
from tests.stores.sqlite_index_support import Index, memory

NOTES = MATCHED_MEMORIES + 300
# Which of alice's notes hold each word (bob's too: an AND's matches count every user's).
HOLDING = {
    "alpha": range(1200),
    "beta": range(1150),
    "epsilon": range(1180),
    "gamma": range(200, 1300),
    "delta": range(1050),
    "eta": range(0, NOTES, 50),
    "zeta": range(0, NOTES, 100),
}
# question -> how the search chooses its words (search_terms.py), the share it needs
QUESTIONS = {
    "zeta eta alpha": ("the two rarer ORed", 0.0),
    "alpha beta gamma delta": ("delta AND gamma: the fewest ANDed within the matches", 0.0),
    "alpha beta epsilon": ("each AND over the matches: all three", 0.0),
    "alpha beta": ("two words, both over the matches: both ANDed", 0.0),
    "alpha unheard unseen": ("no memory could cover the share: nothing ranked", 0.5),
    "unheard": ("no memory holds it", 0.0),
}


def notes(user: str, count: int) -> list[MemoryRecord]:
    return [
        memory(
            " ".join([f"note {n} of {user}", *(w for w, held in HOLDING.items() if n in held)]),
            user=user,
            at=n,
        )
        for n in range(count)
    ]


@pytest.fixture(scope="module")
def indexes(
    postgres_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Index, Index]]:
    """SQLite and PostgreSQL holding the same notes (added once for the module)."""
    records = notes("alice", NOTES) + notes("bob", 200)
    opened = []
    sqlite_path = tmp_path_factory.mktemp("search") / "memory.sqlite3"
    for where in (sqlite_path, postgres_server.schema_url()):
        index = Index(where)
        index.add(*records)
        opened.append(index)
    yield opened[0], opened[1]
    for index in opened:
        index.close()


def search(
    index: Index, question: str, min_share: float, fill_share: float | None = None
) -> list[Recalled]:
    return index(
        lambda i: i.search(
            "alice", "shop", question, limit=10, min_share=min_share, fill_share=fill_share
        )
    )


@pytest.mark.parametrize("question", QUESTIONS)
def test_a_search_is_one_statement(
    indexes: tuple[Index, Index], question: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, postgres = indexes
    min_share = QUESTIONS[question][1]
    search(postgres, question, min_share)
    executed: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def counted(cursor: psycopg.AsyncCursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        # Not the pool's `SET statement_timeout` of a connection it has just opened: the
        # pool may grow to a second one while the first search waits for its first.
        if not str(query).startswith("Composed([SQL('SET '"):
            executed.append(str(query))
        return await execute(cursor, query, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    search(postgres, question, min_share)
    assert len(executed) == 1


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_words_chosen_and_the_hits_are_sqlites(
    indexes: tuple[Index, Index], question: str
) -> None:
    assert_alike(indexes, question, QUESTIONS[question][1])
    if not question.startswith(("alpha unheard", "unheard")):
        assert search(indexes[1], question, 0.0), "a question that finds notes"


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    question=st.lists(
        st.sampled_from([*HOLDING, "note", "of", "alice", "bob", "7"]) | st.text(max_size=40),
        max_size=8,
    ).map(" ".join),
    min_share=st.sampled_from([0.0, 0.4, 0.9]),
    fill_share=st.sampled_from([None, 0.1]),
)
def test_any_question_finds_what_sqlite_finds(
    indexes: tuple[Index, Index], question: str, min_share: float, fill_share: float | None
) -> None:
    """A question is any text: its words go to the statement as arrays, never into it."""
    assert_alike(indexes, question, min_share, fill_share)


def assert_alike(
    indexes: tuple[Index, Index],
    question: str,
    min_share: float,
    fill_share: float | None = None,
) -> None:
    sqlite, postgres = (
        [
            (hit.record.text, hit.score, hit.relevance)
            for hit in search(index, question, min_share, fill_share)
        ]
        for index in indexes
    )
    assert [text for text, _, _ in postgres] == [text for text, _, _ in sqlite]
    numbers = [number for _, *both in sqlite for number in both]
    assert [number for _, *both in postgres for number in both] == pytest.approx(numbers, rel=1e-12)
