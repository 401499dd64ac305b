"""What the MCP tools read from each memory index (SQLite's and PostgreSQL's, through
the `index` fixture): the latest sessions of a project with their first and latest
memories, and memories listed before a moment, a private model's left out on request."""

from __future__ import annotations

import dataclasses

from memory_proxy.records.memory import Privacy
from tests.stores.sqlite_index_support import Index, memory


def test_recent_sessions_are_the_latest_first_with_their_edges(index: Index) -> None:
    index.add(
        memory("first of one", session="one", at=1),
        memory("middle of one", session="one", at=2),
        memory("only of two", session="two", at=3),
        memory("last of one", session="one", at=4),
        memory("elsewhere", session="three", project="other", at=5),
        memory("bob's", session="four", user="bob", at=6),
        memory("no session", session=None, at=7),
        dataclasses.replace(memory("told llama", session="five", at=8), private=True),
    )

    summaries = index(lambda i: i.recent_sessions("alice", "shop", 5))
    assert [(s.session_id, s.memories, s.first_text, s.last_text) for s in summaries] == [
        ("one", 3, "first of one", "last of one"),
        ("two", 1, "only of two", "only of two"),
    ]
    assert (summaries[0].started_at, summaries[0].last_at, summaries[0].client) == (1, 4, "curl")
    with_private = index(lambda i: i.recent_sessions("alice", "shop", 2, privacy="private"))
    assert [s.session_id for s in with_private] == ["five", "one"]


def test_listing_before_a_moment_and_without_private_models(index: Index) -> None:
    index.add(
        *(memory(f"note {n}", at=n) for n in range(1, 5)),
        dataclasses.replace(memory("told llama", at=2.5), private=True),
    )

    def listed(before: float | None = None, privacy: Privacy = "private") -> list[str]:
        found = index(
            lambda i: i.list_memories("alice", "shop", 10, 0, before=before, privacy=privacy)
        )
        return [r.text for r in found]

    assert listed(before=3) == ["told llama", "note 2", "note 1"]
    assert listed(before=3, privacy="hosted") == ["note 2", "note 1"]
    assert listed() == ["note 4", "note 3", "told llama", "note 2", "note 1"]
