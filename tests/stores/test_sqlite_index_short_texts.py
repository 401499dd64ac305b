"""A short memory's text is kept in the SQLite file as it is, a longer one packed (as the
session store keeps its messages, packed_text.py): deflating a memory of a few hundred
bytes cost the index process more than any other step of writing it, to save a few
hundred bytes at most. Either reads back whole, is found and forgotten alike."""

from __future__ import annotations

from pathlib import Path

from memory_proxy.stores.packed_text import PLAIN_BELOW
from tests.stores.sqlite_index_support import Index, memory


def test_a_short_text_is_stored_plain_and_a_long_one_packed(tmp_path: Path) -> None:
    short = memory("User: which port?\nAssistant: The staging database runs on port 5433.")
    long = memory("User: the deploy log?\nAssistant: " + "staging deploy ok; " * PLAIN_BELOW)
    index = Index(tmp_path / "memory.sqlite3")
    try:
        index.add(short, long)
        rows = index.sqlite._db.execute("SELECT id, typeof(text) FROM memories").fetchall()
        assert dict(rows) == {short.id: "text", long.id: "blob"}
        for record in (short, long):
            assert index(lambda i, r=record: i.get("alice", r.id)) == record  # type: ignore[misc]
        assert index.texts("alice", "shop", "database port") == [short.text]
        assert index(lambda i: i.delete("alice", short.id))
        assert index.texts("alice", "shop", "database port") == []
        assert index.texts("alice", "shop", "deploy log") == [long.text]
    finally:
        index.close()
