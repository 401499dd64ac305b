"""Words and meaning fused by score: a question gets a block on absolute scores (words,
meaning, or some of both), and the block is filled by BM25 normalised over the word
search's hits and the cosine, half each, down to a floor."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.fusion import FILL_FLOOR, FUSED_GATE, WORDS_WEIGHT, fuse
from memory_proxy.memory.recall import Recall
from memory_proxy.records.memory import MemoryRecord, Recalled, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.memory.recall_support import block_in_new_session

FACT = "User: btw the nightly build uploads its artifacts to osprey-9\nAssistant: noted."
CHATTER = [
    f"User: ticket {n} about the build is done\nAssistant: next is ticket {n + 1}."
    for n in range(30)
]
# Covers a third of the question's weight (below recall.min_score, 0.4) ...
QUESTION = "where does the nightly build put its outputs?"
# ... and its cosine with the question is below recall.min_similarity (0.4) too.
FACT_COSINE = 0.38


def record(text: str, session: str = "s1") -> MemoryRecord:
    return MemoryRecord(
        memory_id("alice", "repo", text), "alice", "repo", session, "curl", "m", 0.0, text
    )


class Embedder:
    """The question along the first axis; the fact at FACT_COSINE from it, the rest at 0."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [self.vector(text) for text in texts]

    @staticmethod
    def vector(text: str) -> list[float]:
        if text == FACT:
            return [FACT_COSINE, math.sqrt(1 - FACT_COSINE**2)]
        return [1.0, 0.0] if not text.startswith("User:") else [0.0, 1.0]


def block(tmp_path: Path, question: str) -> list[str]:
    """The memories (their first lines) recalled into a new session's `question`."""

    async def run() -> list[str]:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        try:
            await index.add([record(FACT, "s0"), *(record(text) for text in CHATTER)])
            pending = await index.vectors.unembedded(0, 100)
            await index.vectors.add([(seq, Embedder.vector(text)) for seq, text in pending])
            recall = Recall(
                index,
                # what is recalled, not how fast: a loaded machine may take past the
                # default budget (50 ms) to read the vectors at the first search
                RecallSettings(embedding_model="embed", timeout_ms=10_000),
                on_timeout=lambda: None,
                on_failure=lambda: None,
                semantic=SemanticSearch(Embedder(), index.vectors),
            )
            content = await block_in_new_session(recall, question)
            return [
                text.split("\n")[0] for text in [FACT, *CHATTER] if text.split("\n")[0] in content
            ]
        finally:
            await index.aclose()

    return asyncio.run(run())


def test_a_memory_with_some_of_the_words_and_some_of_the_meaning_is_recalled(
    tmp_path: Path,
) -> None:
    """Neither its relevance nor its cosine reaches its threshold alone (nothing on
    5724392, where a memory passed on one or the other)."""
    assert block(tmp_path, QUESTION) == [FACT.split("\n")[0]]


def test_an_off_topic_question_gets_no_block(tmp_path: Path) -> None:
    assert block(tmp_path, "how often should I water a cactus?") == []


def hit(text: str, bm25: float) -> Recalled:
    return Recalled(record(text), bm25)


def test_words_alone_or_meaning_alone_give_a_block_and_neither_gives_none() -> None:
    words = [(hit("a", 9.0), 0.5)]
    assert [h.record.text for h in fuse(words, 0.4, [], 0.4)] == ["a"]
    meaning = [(record("b"), 0.45)]  # in first, though its fill score is below the floor
    assert [h.record.text for h in fuse([(hit("a", 9.0), 0.2)], 0.4, meaning, 0.4)] == ["b", "a"]
    assert fuse([(hit("a", 9.0), 0.2)], 0.4, [(record("b"), 0.3)], 0.4) == []


def test_the_block_is_filled_by_normalised_bm25_and_cosine_down_to_a_floor() -> None:
    lexical = [
        (hit("best words", 12.0), 0.6),
        (hit("fewer words", 8.0), 0.3),
        (hit("worst", 2.0), 0.1),
    ]
    similar = [(record("fewer words"), 0.35), (record("meaning only"), 0.7), (record("far"), 0.1)]
    fused = fuse(lexical, 0.4, similar, 0.4)
    assert [(h.record.text, round(h.score, 3)) for h in fused] == [
        ("best words", 0.5),  # passes on its words: (1 + 0) / 2
        ("meaning only", 0.35),  # passes on its meaning
        ("fewer words", 0.475),  # passes on neither, fills: (0.6 + 0.35) / 2
    ]


scores = st.floats(0, 1, allow_nan=False)


@given(
    lexical=st.lists(
        st.tuples(st.integers(0, 9), st.floats(0, 30, allow_nan=False), scores), max_size=10
    ),
    similar=st.lists(st.tuples(st.integers(0, 9), st.floats(-1, 1, allow_nan=False)), max_size=10),
)
def test_each_candidate_at_most_once_best_first_above_the_floor_and_only_when_answered(
    lexical: Sequence[tuple[int, float, float]], similar: Sequence[tuple[int, float]]
) -> None:
    words = {n: (hit(f"m{n}", bm25), share) for n, bm25, share in lexical}
    meaning = {n: (record(f"m{n}"), cosine) for n, cosine in similar}
    fused = fuse(list(words.values()), 0.4, list(meaning.values()), 0.4)
    texts = [h.record.text for h in fused]
    assert len(texts) == len(set(texts))
    assert set(texts) <= {f"m{n}" for n in (*words, *meaning)}
    relevance = {f"m{n}": share for n, (_, share) in words.items()}
    cosine = {f"m{n}": value for n, (_, value) in meaning.items()}
    answering = [
        relevance.get(t, 0) >= 0.4
        or cosine.get(t, 0) >= 0.4
        or WORDS_WEIGHT * relevance.get(t, 0) + (1 - WORDS_WEIGHT) * cosine.get(t, 0) >= FUSED_GATE
        for t in texts
    ]
    assert answering == sorted(answering, reverse=True)  # those answering first
    for group in (True, False):
        in_group = [h.score for h, a in zip(fused, answering, strict=True) if a is group]
        assert in_group == sorted(in_group, reverse=True)
    assert all(a or h.score >= FILL_FLOOR for h, a in zip(fused, answering, strict=True))
    if not any(answering):
        assert fused == []
