"""A recall search's statement on PostgreSQL: the memories whose words hold the terms a
search matches (search_terms.py), ranked by BM25 exactly as SQLite's FTS5 ranks them
(its bm25(), ext/fts5/fts5_aux.c), so that both indexes put the same memories first.

PostgreSQL ranks without IDF (`ts_rank`, `ts_rank_cd`): on the recall benchmark's
paraphrases they found 0.295 of the facts where BM25 found 0.355. Here, per term matched:
its IDF from the counts kept beside the index (postgres_term_counts.py), as FTS5 computes
it; its frequency in the memory, `ts_rank_cd` of the term alone (the term's positions are
its occurrences); and the memory's length in words against the average. FTS5 counts the
row's two scope tokens (sqlite_index_scope.py) in its length: counted here too.

Each term's part is computed over the memories that hold it (found by the GIN index),
and the parts summed per memory: a term a memory does not hold costs it nothing (taking
every term's frequency of every memory matched took 20-30% longer at 10,000 memories in
one project). When the terms are ANDed, each part ranks the memories holding all of them.
A term's tsquery is made once per statement, in a subquery PostgreSQL keeps apart
(OFFSET 0): written in the WHERE or the SELECT list, a generic plan parses it for every
row. Only the best rows are read whole, with the terms of the question each holds (what
relevance.py needs, read off its words rather than stemmed again).
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import AsyncConnection

from memory_proxy.stores import postgres_term_counts as term_counts
from memory_proxy.stores.postgres_term_counts import lexeme, tsquery
from memory_proxy.stores.relevance import weight
from memory_proxy.stores.search_terms import MATCHED_MEMORIES, anded, ored, rarest_held

K1, B = 1.2, 0.75  # FTS5's
SCOPE_TOKENS = 2  # in each row's length, as FTS5 counts them
MIN_IDF = 1e-6  # FTS5's, for a term more than half the memories hold


# One term's part of the score of each memory it ranks (those holding it, or every term):
# its IDF, the memory's average length, the term, the memories ranked, the WHERE's params.
_TERMS_PART = f"""
SELECT seq, %s::float8 * frequency / (frequency + saturation) AS part
FROM (
    SELECT seq, ts_rank_cd('{{{{1,1,1,1}}}}', words, query.term, 0) AS frequency,
        {K1} * (1 - {B} + {B} * (length + {SCOPE_TOKENS}) / %s::float8) AS saturation
    FROM memories, (SELECT %s::tsquery AS term, %s::tsquery AS ranks OFFSET 0) AS query
    WHERE words @@ query.ranks AND {{where}}
    OFFSET 0
) AS part"""


def idf(holding: int, memories: int) -> float:
    """FTS5's inverse document frequency of a term `holding` of `memories` memories hold."""
    value = math.log((memories - holding + 0.5) / (holding + 0.5))
    return value if value > 0 else MIN_IDF


async def searched(
    db: AsyncConnection,
    columns: list[str],
    question: list[str],
    min_share: float,
    where: str,
    params: tuple[Any, ...],
    limit: int,
) -> tuple[str, tuple[Any, ...], dict[str, float]] | None:
    """A search for the `question`'s terms as the SQLite index makes it: the statement
    (`ranked`) and its arguments, and each term's weight (relevance.py); None when no
    memory could cover `min_share` of the question. Reads the counts kept, and counts the
    matches of the rarest terms ANDed when even the rarest holds too many."""
    held, memories, tokens = await term_counts.counts(db, question)
    weights = {term: weight(count, memories) for term, count in held.items()}
    rarest = rarest_held(held, weights, min_share)
    if not rarest:
        return None
    matched, every = ored(rarest, held), False
    if matched is None:
        matched, every = rarest, True
        for fewer in anded(rarest):
            if await term_counts.matches(db, fewer) <= MATCHED_MEMORIES:
                matched = fewer
                break
    counted = (held, memories, tokens)
    statement, arguments = ranked(columns, question, matched, every, counted, where, params, limit)
    return statement, arguments, weights


def ranked(
    columns: list[str],
    question: list[str],
    matched: list[str],
    every: bool,
    counted: tuple[dict[str, int], int, int],
    where: str,
    params: tuple[Any, ...],
    limit: int,
) -> tuple[str, tuple[Any, ...]]:
    """The statement (and its arguments) returning the `columns` of the best `limit`
    memories that hold any (or `every` one) of the `matched` terms and meet `where`
    (`params`), best first, each with its score and which terms of the `question` it
    holds; `counted`: how many memories hold each term, how many there are, and how many
    words they hold."""
    held, memories, tokens = counted
    average = (tokens + SCOPE_TOKENS * memories) / max(memories, 1)
    match = tsquery(matched, every)
    statement = f"""
SELECT {", ".join("m." + column for column in columns)}, best.score,
    tsvector_to_array(ts_filter(setweight(m.words, 'A', %s::text[]), '{{a}}'))
FROM (
    SELECT seq, {K1 + 1} * sum(part) AS score
    FROM ({" UNION ALL ".join([_TERMS_PART.format(where=where)] * len(matched))}) AS parts
    GROUP BY seq
    ORDER BY score DESC, seq LIMIT %s
) AS best
JOIN memories AS m USING (seq)
ORDER BY best.score DESC, seq
"""
    arguments: list[Any] = [question]
    for term in matched:
        each = lexeme(term) if not every else match  # the memories it ranks
        arguments += [idf(held[term], memories), average, lexeme(term), each, *params]
    arguments.append(limit)
    return statement, tuple(arguments)
