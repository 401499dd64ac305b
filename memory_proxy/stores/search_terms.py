"""Which of a question's words an index's search matches: the rarest ones, as many as it
can afford to rank. Shared by the SQLite and PostgreSQL indexes, from the counts of
memories holding each word that each keeps beside its index (sqlite_term_counts.py,
postgres_term_counts.py).

Ranking costs per memory matched (FTS5's BM25 reads each one's length: about 2.5 us;
PostgreSQL reads each row), and a word most memories hold ("service") tells little: the
rarest words are ORed while they hold at most MATCHED_MEMORIES memories together. When
even the rarest holds more, the index ANDs the rarest, as few as bring its matches within
MATCHED_MEMORIES (it counts them: counting costs a tenth of ranking). Relevance
(relevance.py) still weighs every word of the question.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from memory_proxy.stores.relevance import reaches

# Most memories a search's words may match, summed over its words.
MATCHED_MEMORIES = 1000


def rarest_held(
    held: Mapping[str, int], weights: Mapping[str, float], min_share: float
) -> list[str]:
    """The question's terms some memory holds (`held`: how many memories hold each), rarest
    first; none when all of them together weigh less than `min_share` of the question
    (`weights`): no memory could pass."""
    rarest = sorted((term for term in held if held[term]), key=held.__getitem__)
    total = sum(weights.values())
    if not rarest or not reaches(sum(weights[term] for term in rarest) / total, min_share):
        return []
    return rarest


def ored(rarest: list[str], held: Mapping[str, int]) -> list[str] | None:
    """The first of `rarest` a search ORs: as many as hold at most MATCHED_MEMORIES
    memories together. None when even the first holds more: the search ANDs (`anded`)."""
    taken, total = 1, held[rarest[0]]
    while taken < len(rarest) and total + held[rarest[taken]] <= MATCHED_MEMORIES:
        total += held[rarest[taken]]
        taken += 1
    return rarest[:taken] if total <= MATCHED_MEMORIES else None


def anded(rarest: list[str]) -> Iterator[list[str]]:
    """What a search may AND when even the rarest word holds too many memories, fewest
    first: the first 2, 3 ... of `rarest`; it takes the first whose matches it counts
    within MATCHED_MEMORIES, else all of `rarest`."""
    for together in range(2, len(rarest)):
        yield rarest[:together]
