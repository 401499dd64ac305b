"""Recall by words and by meaning together (`recall.embedding_model`), fused by score, not
by rank (issue 20: reciprocal rank fusion lost to BM25 alone), in two steps:

1. Which memories answer the question, on absolute scores that mean the same for every
   question: a memory covers enough of the question's weight (relevance at the cut-off,
   as with words alone), or is close enough in meaning (cosine at
   `recall.min_similarity`), or has some of both (0.7 relevance + 0.3 cosine at 0.33).
   None: no block (an off-topic question shares little with its user's memories either
   way).
2. With them, which others fill the block, relative to this question's candidates: a
   memory whose fill score reaches a floor, the fill score being BM25 normalised over
   the word search's hits (the best 1, the worst 0) at 0.5, the cosine at 0.7 and the
   relevance at 1. All of them go into the block in one order: the fill score per square
   root of the memory's length, so that a short memory goes before a long one scoring
   a little more (the block then stops at `recall.max_tokens` or `recall.limit`).

Chosen on the long-history benchmark's tune split with wordllama (README "Recall
quality"): evidence 0.299 with the rule before (a memory passed on words or on meaning
alone, ordered by relevance + cosine), 0.358 with step 1 alone (its fused score deciding
and ordering), 0.407 with step 2 filling by BM25 and cosine alone, half each, down to 0.3,
those of step 1 first; relevance in the fill score: 0.433; the order by length: 0.444
(0.426 -> 0.459 on test, where words alone reach 0.405), off-topic blocks at 10% / 7.5%,
tokens on-topic 505 -> 564. Merging adjacent exchanges of one session into one passage
changed nothing there (0.399 both ways, 18 of 209 blocks held two neighbours): not done.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from memory_proxy.records.memory import MemoryRecord, Recalled
from memory_proxy.stores.relevance import reaches

WORDS_WEIGHT = 0.7  # of relevance, beside the cosine, in step 1's fused score
FUSED_GATE = 0.33  # step 1's fused score that gives a question its block
# Step 2's fill score: normalised BM25, cosine and relevance (each 0-1) weighed so.
FILL_WEIGHTS = (0.5, 0.7, 1.0)
FILL_FLOOR = 0.4  # the fill score a memory needs to go into the block
CANDIDATES_BY_MEANING = 20  # the closest memories asked of the vectors


def fuse(
    lexical: Sequence[tuple[Recalled, float]],
    cut_off: float,
    similar: Sequence[tuple[MemoryRecord, float]],
    min_similarity: float,
    *,
    weights: tuple[float, float, float] = FILL_WEIGHTS,
    floor: float = FILL_FLOOR,
) -> list[Recalled]:
    """The block's memories, best first, from the word search's hits (`lexical`: hit and
    its relevance, whatever it is; the hit's score its BM25) and the closest memories
    (`similar`: record and cosine), each scored by the fill score (`weights`, `floor`: the
    benchmark's replay tries others); none when the question gets no block."""
    relevance = {hit.record.id: share for hit, share in lexical}
    cosine = {record.id: value for record, value in similar}
    records = {hit.record.id: hit.record for hit, _ in lexical}
    records.update((record.id, record) for record, _ in similar)
    passing = answering(lexical, cut_off, similar, min_similarity)
    if not passing:
        return []
    normalised = _min_max({hit.record.id: hit.score for hit, _ in lexical})
    by_words, by_meaning, by_share = weights
    scored = [
        Recalled(
            record,
            by_words * normalised.get(id_, 0.0)
            + by_meaning * cosine.get(id_, 0.0)
            + by_share * relevance.get(id_, 0.0),
            relevance.get(id_),
        )
        for id_, record in records.items()
    ]
    chosen = [hit for hit in scored if hit.record.id in passing or hit.score >= floor]
    chosen.sort(key=lambda hit: -hit.score / math.sqrt(max(len(hit.record.text), 1)))
    return chosen


def answering(
    lexical: Sequence[tuple[Recalled, float]],
    cut_off: float,
    similar: Sequence[tuple[MemoryRecord, float]],
    min_similarity: float,
) -> set[str]:
    """Step 1: the ids of the memories that answer the question."""
    relevance = {hit.record.id: share for hit, share in lexical}
    cosine = {record.id: value for record, value in similar}
    return {
        id_
        for id_ in relevance.keys() | cosine.keys()
        if reaches(relevance.get(id_, 0.0), cut_off)
        or cosine.get(id_, 0.0) >= min_similarity
        or WORDS_WEIGHT * relevance.get(id_, 0.0) + (1 - WORDS_WEIGHT) * cosine.get(id_, 0.0)
        >= FUSED_GATE
    }


def _min_max(scores: dict[str, float]) -> dict[str, float]:
    """Each score from 0 (the lowest) to 1 (the highest); all 1 when they are alike."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    return {
        key: (value - low) / (high - low) if high > low else 1.0 for key, value in scores.items()
    }
