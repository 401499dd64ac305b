"""The texts and terms of recent search hits kept (stores/recent_hits.py): a memory
returned again is neither unpacked nor stemmed again, and what is read is always what
the row holds."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.stores.packed_text import PLAIN_BELOW, pack
from memory_proxy.stores.recent_hits import RecentHits
from memory_proxy.stores.relevance import terms_of
from memory_proxy.stores.sqlite_index_sql import record
from tests.stores.sqlite_index_support import Index, memory


def _row(text: str, private: int = 0, packed: bool = True) -> tuple[object, ...]:
    stored = pack(text) if packed else text
    return ("id1", "alice", "shop", "s1", "curl", "m", 1_000.0, stored, private)


def test_a_memory_found_again_is_not_unpacked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inflated: list[bytes] = []
    decompress = zlib.decompress

    def counting(data: bytes) -> bytes:
        inflated.append(data)
        return decompress(data)

    deploy = "we deploy the shop with make release" + ", on a weekday" * PLAIN_BELOW  # packed
    index = Index(tmp_path / "memory.sqlite3")
    try:
        index.add(memory(deploy), memory("the heron port"))
        monkeypatch.setattr(zlib, "decompress", counting)  # packed_text calls it there
        first = index.texts("alice", "shop", "how do we deploy the shop?")
        after_first = len(inflated)
        again = index.texts("alice", "shop", "deploy the shop, again")
    finally:
        index.close()
    assert first == again == [deploy]
    assert after_first == 1
    assert len(inflated) == after_first  # the second search read the kept text


@given(
    texts=st.lists(st.text(max_size=80), min_size=1, max_size=12),
    private=st.lists(st.integers(0, 1), min_size=12, max_size=12),
    kept=st.integers(1, 4),
    packed=st.booleans(),
)
def test_a_row_reads_as_it_would_unkept_however_often(
    texts: list[str], private: list[int], kept: int, packed: bool
) -> None:
    hits = RecentHits(kept)
    for _ in range(2):  # kept or evicted: the same record and terms
        for text, flag in zip(texts, private, strict=False):
            row = _row(text, flag, packed)
            assert hits.read(row) == (record(row), frozenset(terms_of(text)))


def test_at_most_the_given_number_are_kept() -> None:
    hits = RecentHits(3)
    for n in range(10):
        hits.read(_row(f"memory number {n}"))
    assert len(hits._texts) == 3
    # the same id with another text (an import that reused an id) reads its own text
    assert hits.read(_row("another text"))[0].text == "another text"
