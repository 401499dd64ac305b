"""The recall benchmarks' model cache gives a text the vector the model gave it, and asks
the model only for texts it has not seen (the sentence model needs minutes for the long
histories, at every threshold otherwise); the replay's pieces pack a memory's sentences
without losing or reordering any."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from scripts.bench_embedding_models import Embedding
from scripts.bench_recall_fusion_replay import pieces


class Counting(Embedding):
    """Three numbers from the text's checksum; every text it was asked for recorded."""

    def __init__(self, cache: Path | None) -> None:
        super().__init__(cache)
        self.asked: list[str] = []

    def compute(self, texts: list[str]) -> list[list[float]]:
        self.asked += texts
        return [[float(zlib.crc32(t.encode()) % 97), float(len(t)), 1.5] for t in texts]


def test_the_cache_embeds_each_text_once_and_keeps_its_vector(tmp_path: Path) -> None:
    cache = tmp_path / "model.sqlite3"
    first = Counting(cache)
    fresh = Counting(None).vectors(["a", "b", "a", "c"])
    assert first.vectors(["a", "b", "a"]) == fresh[:3]
    assert first.asked == ["a", "b"]
    again = Counting(cache)  # another run: the file's vectors
    assert asyncio.run(again.embed(["c", "b", "a"])) == [fresh[3], fresh[1], fresh[0]]
    assert again.asked == ["c"]


sentences = st.lists(
    st.text(alphabet="abc xyz", min_size=1, max_size=60).map(lambda s: s.strip() + "."),
    min_size=1,
    max_size=12,
).filter(lambda parts: all(len(part) > 1 for part in parts))


@given(sentences, st.integers(min_value=10, max_value=300))
def test_pieces_keep_every_sentence_in_order_within_the_size(parts: list[str], size: int) -> None:
    text = " ".join(parts)
    packed = pieces(text, size)
    assert " ".join(packed).split() == text.split()
    for piece in packed:
        assert len(piece) <= size or "." not in piece.rstrip(".")  # one long sentence alone
