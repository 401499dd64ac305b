"""Words and meaning fused by score: a question gets a block on absolute scores (words,
meaning, or some of both), and the block is filled by BM25 normalised over the word
search's hits, the cosine and the relevance, down to a floor, in that score per square
root of each memory's length."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.fusion import FILL_FLOOR, FILL_WEIGHTS, FUSED_GATE, WORDS_WEIGHT, fuse
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


def block(tmp_path: Path, question: str, facts: Sequence[str] = (FACT,)) -> list[str]:
    """The memories (their first lines) recalled into a new session's `question`, from
    `facts` (of an earlier session) and the chatter."""

    async def run() -> list[str]:
        index = SQLiteMemoryIndex(tmp_path / "memory.sqlite3")
        try:
            await index.add([*(record(text, "s0") for text in facts), *map(record, CHATTER)])
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
                text.split("\n")[0] for text in [*facts, *CHATTER] if text.split("\n")[0] in content
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


def test_a_memory_holding_some_of_the_question_fills_an_answered_questions_block(
    tmp_path: Path,
) -> None:
    """Its relevance counts in the fill score: the owner's memory shares two telling words
    with the question and nothing of its meaning (left out on 65c088b, where only BM25
    normalised and the cosine filled the block)."""
    answer = "User: the osprey nightly build runs on builder-3\nAssistant: noted."
    owner = (
        "User: Dana owns osprey since March, she took it over from Lee in the spring\n"
        "Assistant: ok."
    )
    question = "which machine runs the osprey nightly build, and who owns it?"
    found = block(tmp_path, question, [answer, owner])
    assert found[:2] == [answer.split("\n")[0], owner.split("\n")[0]]


def hit(text: str, bm25: float) -> Recalled:
    return Recalled(record(text), bm25)


def test_words_alone_or_meaning_alone_give_a_block_and_neither_gives_none() -> None:
    words = [(hit("a", 9.0), 0.5)]
    assert [h.record.text for h in fuse(words, 0.4, [], 0.4)] == ["a"]
    meaning = [(record("b"), 0.45)]  # in, though its fill score is below the floor
    assert [h.record.text for h in fuse([(hit("a", 9.0), 0.2)], 0.4, meaning, 0.4)] == ["a", "b"]
    assert fuse([(hit("a", 9.0), 0.2)], 0.4, [(record("b"), 0.3)], 0.4) == []


def test_the_block_is_filled_by_bm25_cosine_and_relevance_down_to_a_floor() -> None:
    lexical = [
        (hit("best words", 12.0), 0.6),
        (hit("fewer words", 8.0), 0.3),
        (hit("worst", 2.0), 0.1),
    ]
    similar = [(record("fewer words"), 0.1), (record("meaning only"), 0.45), (record("far"), 0.1)]
    fused = fuse(lexical, 0.4, similar, 0.4)
    assert [(h.record.text, round(h.score, 3)) for h in fused] == [
        ("best words", 1.1),  # passes on its words: 0.5 * 1 + 0.6
        ("fewer words", 0.67),  # passes on nothing, fills: 0.5 * 0.6 + 0.7 * 0.1 + 0.3
        ("meaning only", 0.315),  # passes on its meaning: 0.7 * 0.45
    ]  # "worst" (0.1 + 0.5 * 0) and "far" (0.07) below the floor


def test_a_short_memory_goes_before_a_long_one_scoring_a_little_more() -> None:
    """The block's budget goes further: on 65c088b the best score went first, whatever
    its length."""
    long_one, short_one = "a long answer " * 40, "short fact"
    lexical = [(hit(long_one, 10.0), 0.9), (hit(short_one, 9.0), 0.8)]
    assert [h.record.text for h in fuse(lexical, 0.4, [], 0.4)] == [short_one, long_one]


scores = st.floats(0, 1, allow_nan=False)


@given(
    lexical=st.lists(
        st.tuples(st.integers(0, 9), st.floats(0, 30, allow_nan=False), scores), max_size=10
    ),
    similar=st.lists(st.tuples(st.integers(0, 9), st.floats(-1, 1, allow_nan=False)), max_size=10),
    lengths=st.lists(st.integers(0, 300), min_size=10, max_size=10),
)
def test_each_candidate_at_most_once_by_score_per_length_above_the_floor_and_only_when_answered(
    lexical: Sequence[tuple[int, float, float]],
    similar: Sequence[tuple[int, float]],
    lengths: list[int],
) -> None:
    text = [f"m{n}" + "x" * lengths[n] for n in range(10)]
    words = {n: (hit(text[n], bm25), share) for n, bm25, share in lexical}
    meaning = {n: (record(text[n]), cosine) for n, cosine in similar}
    fused = fuse(list(words.values()), 0.4, list(meaning.values()), 0.4)
    texts = [h.record.text for h in fused]
    assert len(texts) == len(set(texts))
    assert set(texts) <= {text[n] for n in (*words, *meaning)}
    relevance = {text[n]: share for n, (_, share) in words.items()}
    cosine = {text[n]: value for n, (_, value) in meaning.items()}
    answering = [
        relevance.get(t, 0) >= 0.4
        or cosine.get(t, 0) >= 0.4
        or WORDS_WEIGHT * relevance.get(t, 0) + (1 - WORDS_WEIGHT) * cosine.get(t, 0) >= FUSED_GATE
        for t in texts
    ]
    per_length = [h.score / math.sqrt(len(h.record.text)) for h in fused]
    assert per_length == sorted(per_length, reverse=True)
    assert all(a or h.score >= FILL_FLOOR for h, a in zip(fused, answering, strict=True))
    assert all(h.score <= sum(FILL_WEIGHTS) + 1e-9 for h in fused)
    if not any(answering):
        assert fused == []
