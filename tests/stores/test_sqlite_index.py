"""The long-term memory index, SQLite's and PostgreSQL's through the same tests: each
method, per-user and per-project isolation, stemming, export, and any stored text kept
whole (the query side: test_recall_query)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.config import MemorySettings
from memory_proxy.records.memory import GENERAL_PROJECT
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.open import open_memory_index
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.stores.sqlite_index_support import BlankIndexes, Index, memory

# A hypothesis test takes where to open its index from a fixture, and opens one per example.
FIXTURE_PER_TEST = [HealthCheck.function_scoped_fixture]


def fts_is_consistent(index: Index) -> bool:
    """FTS5's own check that the index matches the memories table (PostgreSQL computes
    each row's words beside its text: nothing to check)."""
    if not isinstance(index.index, SQLiteMemoryIndex):
        return True
    try:
        index.sqlite._db.execute(
            "INSERT INTO memories_fts (memories_fts, rank) VALUES ('integrity-check', 1)"
        )
    except sqlite3.DatabaseError:
        return False
    return True


def test_a_memory_is_found_by_its_words_and_read_back(index: Index) -> None:
    record = memory("User: which port?\nAssistant: The staging database runs on port 5433.")
    index.add(record, memory("User: lunch?\nAssistant: Pizza on Friday."))
    hits = index(lambda i: i.search("alice", "shop", "staging database port", limit=5))
    assert [hit.record for hit in hits] == [record]
    assert hits[0].score > 0
    assert index(lambda i: i.get("alice", record.id)) == record


def test_better_matches_score_higher(index: Index) -> None:
    index.add(
        memory("we deploy on fridays", at=1),
        memory("we deploy with make release on fridays", at=2),
        memory("the cat sleeps", at=3),
    )
    hits = index(lambda i: i.search("alice", "shop", "deploy with make release", limit=5))
    assert [hit.record.text for hit in hits] == [
        "we deploy with make release on fridays",
        "we deploy on fridays",
    ]
    assert hits[0].score > hits[1].score


def test_stemming_finds_other_forms_of_a_word(index: Index) -> None:
    index.add(memory("The service was deployed to the cluster."))
    assert index.texts("alice", "shop", "deploying") == ["The service was deployed to the cluster."]


def test_queries_without_topic_words_find_nothing(index: Index) -> None:
    index.add(memory("can you please tell me what you think"))
    assert index.texts("alice", "shop", "") == []
    assert index.texts("alice", "shop", "Can you please tell me what you think?") == []
    assert index(lambda i: i.search("alice", "shop", "think", limit=0)) == []


def test_identical_text_is_stored_once_per_user_and_project(index: Index) -> None:
    same = memory("we use tabs")
    index.add(same, same)
    index.add(memory("we use tabs", session="s2", at=5_000))
    index.add(memory("we use tabs", project="blog"), memory("we use tabs", user="bob"))
    assert len(index(lambda i: i.list_memories("alice", "shop", 10, 0))) == 1
    assert len(index(lambda i: i.list_memories("alice", None, 10, 0))) == 2
    assert len(index(lambda i: i.list_memories("bob", None, 10, 0))) == 1
    assert index.texts("alice", "shop", "tabs") == ["we use tabs"]


def test_stored_says_which_ids_are_kept_of_any_user_in_any_number(index: Index) -> None:
    kept = [memory(f"fact {n}", user="bob" if n % 2 else "alice") for n in range(1_200)]
    index.add(*kept)
    asked = [record.id for record in kept[::3]] + ["not-a-memory", memory("new").id]
    assert index(lambda i: i.stored(asked)) == {record.id for record in kept[::3]}
    assert index(lambda i: i.stored([])) == set()


def test_a_user_never_sees_another_users_memories(index: Index) -> None:
    index.add(memory("alice's token is red", user="alice"))
    index.add(memory("bob's token is blue", user="bob"))
    assert index.texts("alice", "shop", "token") == ["alice's token is red"]
    assert index.texts("alice", None, "token blue bob") == ["alice's token is red"]
    bobs = index(lambda i: i.list_memories("bob", None, 10, 0))
    assert [r.text for r in bobs] == ["bob's token is blue"]
    assert index(lambda i: i.get("alice", bobs[0].id)) is None
    assert index(lambda i: i.delete("alice", bobs[0].id)) is False
    assert index(lambda i: i.forget_project("alice", "shop")) == 1
    assert index.texts("bob", "shop", "token") == ["bob's token is blue"]


def test_the_project_narrows_search_and_none_means_every_project(index: Index) -> None:
    index.add(
        memory("shop uses postgres", project="shop"),
        memory("blog uses postgres", project="blog"),
        memory("home uses postgres", project=GENERAL_PROJECT),
    )
    assert index.texts("alice", "shop", "postgres") == ["shop uses postgres"]
    assert index.texts("alice", GENERAL_PROJECT, "postgres") == ["home uses postgres"]
    assert sorted(index.texts("alice", None, "postgres")) == [
        "blog uses postgres",
        "home uses postgres",
        "shop uses postgres",
    ]
    assert index.texts("alice", "other", "postgres") == []


def test_the_current_session_can_be_left_out(index: Index) -> None:
    index.add(
        memory("redis on 6380", session="now"),
        memory("redis on 6379", session="before"),
        memory("redis cluster", session=None),
    )
    assert sorted(index.texts("alice", "shop", "redis", exclude_session="now")) == [
        "redis cluster",
        "redis on 6379",
    ]
    assert len(index.texts("alice", "shop", "redis")) == 3


def test_list_memories_is_newest_first_and_pages(index: Index) -> None:
    index.add(*(memory(f"fact {n}", at=n, project="shop" if n % 2 else "blog") for n in range(6)))
    newest = index(lambda i: i.list_memories("alice", None, 3, 0))
    assert [r.text for r in newest] == ["fact 5", "fact 4", "fact 3"]
    older = index(lambda i: i.list_memories("alice", None, 3, 3))
    assert [r.text for r in older] == ["fact 2", "fact 1", "fact 0"]
    shop = index(lambda i: i.list_memories("alice", "shop", 10, 0))
    assert [r.text for r in shop] == ["fact 5", "fact 3", "fact 1"]


def test_a_deleted_memory_is_gone_from_search_too(index: Index) -> None:
    kept, dropped = memory("kafka topic orders", at=1), memory("kafka topic payments", at=2)
    index.add(kept, dropped)
    assert index(lambda i: i.delete("alice", dropped.id)) is True
    assert index(lambda i: i.delete("alice", dropped.id)) is False
    assert index(lambda i: i.get("alice", dropped.id)) is None
    assert index.texts("alice", "shop", "kafka payments") == ["kafka topic orders"]
    assert fts_is_consistent(index)


def test_forget_project_counts_and_spares_the_others(index: Index) -> None:
    index.add(memory("one nginx", project="shop"), memory("two nginx", project="shop", at=2))
    index.add(memory("three nginx", project="blog"))
    assert index(lambda i: i.forget_project("alice", "shop")) == 2
    assert index(lambda i: i.forget_project("alice", "shop")) == 0
    assert index.texts("alice", None, "nginx") == ["three nginx"]
    assert fts_is_consistent(index)


def test_projects_counts_memories_and_last_use_per_user(index: Index) -> None:
    index.add(memory("a1", project="shop", at=10), memory("a2", project="shop", at=30))
    index.add(memory("b1", project="blog", at=20), memory("c1", user="bob", at=99))
    infos = index(lambda i: i.projects("alice"))
    assert [(p.user_id, p.project, p.memory_count, p.last_used) for p in infos] == [
        ("alice", "shop", 2, 30),
        ("alice", "blog", 1, 20),
    ]
    assert index(lambda i: i.projects("carol")) == []


def test_every_users_memories_are_listed_searched_read_and_forgotten(index: Index) -> None:
    assert index.texts(None, "shop", "postgres") == []  # nobody's yet
    alices = memory("alice's shop uses postgres", at=1)
    index.add(alices, memory("alice's blog uses postgres", project="blog", at=2))
    index.add(memory("bob's shop uses postgres", user="bob", at=3, session="s2"))
    index.add(memory("carol's notes on postgres", user="carol", project="", at=4))
    newest = index(lambda i: i.list_memories(None, None, 3, 0))
    assert [r.text for r in newest] == [
        "carol's notes on postgres",
        "bob's shop uses postgres",
        "alice's blog uses postgres",
    ]
    shops = index(lambda i: i.list_memories(None, "shop", 10, 0))
    assert [r.user_id for r in shops] == ["bob", "alice"]
    assert len(index.texts(None, None, "postgres")) == 4
    assert sorted(index.texts(None, "shop", "postgres")) == [
        "alice's shop uses postgres",
        "bob's shop uses postgres",
    ]
    assert index.texts(None, "shop", "postgres", exclude_session="s2") == [alices.text]
    assert index.texts(None, "", "postgres") == ["carol's notes on postgres"]
    assert index(lambda i: i.get(None, alices.id)) == alices
    infos = index(lambda i: i.projects(None))
    assert [(p.user_id, p.project, p.memory_count) for p in infos] == [
        ("carol", "", 1),
        ("bob", "shop", 1),
        ("alice", "blog", 1),
        ("alice", "shop", 1),
    ]
    assert index(lambda i: i.delete(None, alices.id)) is True
    assert index(lambda i: i.get(None, alices.id)) is None
    assert index(lambda i: i.forget_project(None, "shop")) == 1
    assert index(lambda i: i.forget_user("alice")) == 1
    assert index(lambda i: i.forget_user("alice")) == 0
    assert index.texts(None, None, "postgres") == ["carol's notes on postgres"]
    assert fts_is_consistent(index)


WORDS = ["deploy", "staging", "port", "redis", "token", "nginx", "friday", "heron"]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_PER_TEST)
@given(
    stored=st.lists(
        st.tuples(
            st.sampled_from(["alice", "bob", "carol"]),
            st.sampled_from([GENERAL_PROJECT, "shop", "blog"]),
            st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join),
        ),
        max_size=30,
    ),
    project=st.sampled_from([None, GENERAL_PROJECT, "shop"]),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    limit=st.integers(min_value=1, max_value=40),
    scoped_users=st.sampled_from([1, 64]),  # a project of every user: without tokens, with
)
def test_searching_every_user_is_each_users_search_together(
    blank_index: BlankIndexes,
    stored: list[tuple[str, str, str]],
    project: str | None,
    query: str,
    limit: int,
    scoped_users: int,
) -> None:
    """Same hits, same scores: the scope clause weighs nothing, whichever form it takes."""
    with blank_index() as opened:
        if isinstance(opened.index, SQLiteMemoryIndex):
            opened.index.max_scoped_users = scoped_users
        opened.add(*(memory(text, user=user, project=where) for user, where, text in stored))

        def search(user: str | None, cap: int) -> list[tuple[str, float]]:
            hits = opened(lambda i: i.search(user, project, query, limit=cap))
            return [(hit.record.id, hit.score) for hit in hits]

        each = sorted(
            (hit for user in ("alice", "bob", "carol") for hit in search(user, 100)),
            key=lambda hit: -hit[1],
        )
        together = search(None, limit)
        assert [score for _, score in together] == pytest.approx(
            [score for _, score in each[:limit]]
        )
        assert {hit_id for hit_id, _ in together} <= {hit_id for hit_id, _ in each}
        if limit >= len(each):
            assert dict(together) == pytest.approx(dict(each))


def test_a_file_written_before_every_user_listing_is_served_as_it_is(tmp_path: Path) -> None:
    """No migration: the scope tokens are unchanged, and the index that orders every
    user's memories by time is added on opening."""
    path = tmp_path / "memory.sqlite3"
    first = Index(path)
    first.add(memory("old postgres note", at=1), memory("bob's postgres", user="bob", at=2))
    first.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX memories_by_time")  # as cc0445f wrote it: no such index,
        db.execute("DROP TABLE schema_versions")  # and no schema versions
    second = Index(path)
    try:
        newest = second(lambda i: i.list_memories(None, None, 10, 0))
        assert [r.text for r in newest] == ["bob's postgres", "old postgres note"]
        assert sorted(second.texts(None, "shop", "postgres")) == [
            "bob's postgres",
            "old postgres note",
        ]
        plan = second.sqlite._db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM memories ORDER BY created_at DESC, seq DESC"
        ).fetchall()
        assert "memories_by_time" in plan[0][3]
    finally:
        second.close()


def test_a_reopened_file_keeps_its_memories(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "memory.sqlite3"
    first = Index(path)
    first.add(memory("the staging database runs on port 5433"))
    first.close()
    second = Index(path)
    try:
        assert second.texts("alice", "shop", "staging port") == [
            "the staging database runs on port 5433"
        ]
        assert fts_is_consistent(second)
    finally:
        second.close()


def test_the_configured_store_decides_where_memories_live(tmp_path: Path) -> None:
    async def scenario(settings: MemorySettings) -> list[str]:
        index = open_memory_index(settings)
        assert index is not None
        try:
            await index.add([memory("grafana dashboards")])
            return [
                hit.record.text for hit in await index.search("alice", None, "grafana", limit=1)
            ]
        finally:
            await index.aclose()

    path = tmp_path / "store.sqlite3"
    assert asyncio.run(scenario(MemorySettings(store="sqlite", sqlite_path=path))) == [
        "grafana dashboards"
    ]
    assert path.exists()
    assert asyncio.run(scenario(MemorySettings(store="memory"))) == ["grafana dashboards"]
    assert not (Path.cwd() / ":memory:").exists()
    assert open_memory_index(MemorySettings(store="redis")) is None


def exported(index: Index, user: str | None, project: str | None, batch: int = 2) -> list[str]:
    async def collect(i: MemoryIndex) -> list[str]:
        return [r.text async for rs in i.export(user, project, batch=batch) for r in rs]

    return index(collect)


def test_export_is_oldest_first_in_batches_for_one_user_or_everyone(index: Index) -> None:
    index.add(memory("a-shop", at=3), memory("b-shop", user="bob", at=1))
    index.add(memory("a-blog", project="blog", at=2), memory("a-general", project="", at=4))
    assert exported(index, None, None) == ["a-shop", "b-shop", "a-blog", "a-general"]
    assert exported(index, "alice", None, batch=1) == ["a-shop", "a-blog", "a-general"]
    assert exported(index, None, "shop") == ["a-shop", "b-shop"]
    assert exported(index, "alice", GENERAL_PROJECT) == ["a-general"]
    assert exported(index, "carol", None) == []


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_export_reads_one_snapshot_while_another_connection_writes(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """`memory-proxy memories export` may run beside a proxy that keeps adding memories."""
    where = tmp_path / "m.sqlite3" if kind == "sqlite" else request.getfixturevalue("postgres_url")
    reader, writer = Index(where), Index(where)
    try:
        reader.add(*(memory(f"old {n}", at=n) for n in range(4)))

        async def export_while_writing(i: MemoryIndex) -> list[str]:
            texts: list[str] = []
            async for batch in i.export(None, None, batch=2):
                if not texts:
                    await asyncio.to_thread(writer.add, memory("new", at=0))
                texts += [r.text for r in batch]
            return texts

        assert reader(export_while_writing) == [f"old {n}" for n in range(4)]
        assert "new" in exported(reader, None, None)
    finally:
        reader.close()
        writer.close()


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_PER_TEST)
@given(texts=st.lists(st.text(min_size=1, max_size=3000), min_size=1, max_size=6), data=st.data())
def test_any_text_is_kept_whole_and_forgetting_any_of_them_keeps_the_index_sound(
    blank_index: BlankIndexes, texts: list[str], data: st.DataObject
) -> None:
    """Texts are stored packed and indexed from outside the table (the index's delete
    must be handed exactly what it indexed): whatever they hold, they come back whole,
    the forgotten ones go, and FTS5's own check passes."""
    with blank_index() as opened:
        records = [memory(f"{text} marker{n}", at=n) for n, text in enumerate(texts)]
        opened.add(*records)
        assert [opened(lambda i, r=r: i.get(None, r.id)) for r in records] == records  # type: ignore[misc]
        forgotten = data.draw(st.sets(st.sampled_from(records)))
        for record in forgotten:
            assert opened(lambda i, r=record: i.delete(None, r.id))  # type: ignore[misc]
        assert fts_is_consistent(opened)
        kept = [r for r in records if r not in forgotten]
        listed = opened(lambda i: i.list_memories(None, None, 100, 0))
        assert sorted(listed, key=lambda r: r.created_at) == kept
        for n, record in enumerate(records):
            found = opened(lambda i, n=n: i.search(None, None, f"marker{n}", limit=10))  # type: ignore[misc]
            assert [hit.record for hit in found] == ([] if record in forgotten else [record])
