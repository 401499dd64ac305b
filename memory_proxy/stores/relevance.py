"""How much of a question a memory answers, as a share that means the same at any index
size: the share of the question's *weight* that the memory's words cover, each word
weighted by how telling it is (its inverse document frequency in the index).

A raw share of words treats "work" like "eaddrinuse": a memory that shares the common
half of a question passed, and one holding only its rare name failed. Weighted, a rare
name or identifier counts for far more than "time" or "good", and an off-topic question
whose only shared words are common ones covers little of its weight. BM25 ranks the
hits (FTS5); this share gates them. A word the index has never seen counts as if seen
once: it is what an off-topic question is made of, and a paraphrase's other word.

Words are compared as the index holds them: folded and stemmed exactly as SQLite's
`porter unicode61` tokenizer does (porter.py), so "deployed" covers "deploy". Both indexes
hold these terms (PostgreSQL's is built from them) and count the memories holding each,
so the weights, and what passes, are the same on either.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

from memory_proxy.records.memory import MemoryRecord, Recalled
from memory_proxy.stores import porter


def stems(terms: Iterable[str]) -> list[str]:
    """The distinct stems of `terms` (the question's topic words), in order."""
    return list(dict.fromkeys(porter.stem(word) for term in terms for word in porter.words(term)))


def words_by_stem(terms: Sequence[str]) -> dict[str, str]:
    """Each distinct stem of `terms` -> the first of `terms` that gives it, ordered as the
    stems first appear from the last term back: what an index searches each stem as (FTS5
    stems the word again). One pass; stems() per term built a dict and a list for each."""
    words: dict[str, str] = {}
    for term in reversed(terms):
        for word in porter.words(term):
            words[porter.stem(word)] = term
    return words


def weight(documents_with_term: int, documents: int) -> float:
    """BM25's inverse document frequency (always positive); unseen terms as if seen once."""
    seen = max(documents_with_term, 1)
    return math.log(1 + (max(documents, seen) - seen + 0.5) / (seen + 0.5))


def terms_of(text: str) -> set[str]:
    """The distinct terms the index holds for `text`."""
    return set(map(porter.stem, set(porter.words(text))))


def covered_share(weights: Mapping[str, float], text: str) -> float:
    """The share of the total of `weights` (stem -> weight) whose stems `text` holds."""
    return held_share(weights, terms_of(text))


def held_share(weights: Mapping[str, float], held: Collection[str]) -> float:
    """The share of the total of `weights` (stem -> weight) whose stems are `held`."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return _held_weight(weights, held) / total


def _held_weight(weights: Mapping[str, float], held: Collection[str]) -> float:
    return sum(value for term, value in weights.items() if term in held)


def reaches(share: float, needed: float) -> bool:
    """`share` >= `needed`, but for rounding: four words of five weighing alike are 0.8."""
    return share >= needed - 1e-9


def relevant(
    ranked: Iterable[tuple[MemoryRecord, float, Collection[str]]],
    weights: Mapping[str, float],
    min_share: float,
    fill_share: float | None = None,
) -> list[Recalled]:
    """The `ranked` memories (each with its rank's score and the terms it holds, or at
    least those of the question) that cover at least `min_share` of the question's
    `weights`, with their share: what an index's search returns. With `fill_share`, once
    one covers `min_share`, all those covering `fill_share` (recall fills the block)."""
    total = sum(weights.values())  # held_share's, once for every memory
    shares = [
        (record, score, 0.0 if total <= 0 else _held_weight(weights, held) / total)
        for record, score, held in ranked
    ]
    needed = min_share
    if fill_share is not None and any(reaches(share, min_share) for *_, share in shares):
        needed = fill_share
    return [
        Recalled(record, score, share) for record, score, share in shares if reaches(share, needed)
    ]


async def no_hits() -> list[Recalled]:
    """What a search that has nothing to look for (no topic words) returns, awaited as a
    search that runs is."""
    return []
