"""A recall search on PostgreSQL, in one statement (one round trip): the counts of the
question's terms read (postgres_term_counts.py), the terms a search matches chosen from
them as search_terms.py chooses them for SQLite, and the memories holding them ranked by
BM25 exactly as SQLite's FTS5 ranks them (its bm25(), ext/fts5/fts5_aux.c), so that both
indexes put the same memories first.

One statement rather than the counts and then the ranking: on a busy machine each round
trip waits its turn for a core (10,000 memories in one project: the counts alone took
0.75-1.9 ms on average at a load of 4-9), and the statement is the same text for every
question, so it is prepared once per connection.

PostgreSQL ranks without IDF (`ts_rank`, `ts_rank_cd`): on the recall benchmark's
paraphrases they found 0.295 of the facts where BM25 found 0.355. Here, per term matched:
its IDF from the counts, as FTS5 computes it; its frequency in the memory, `ts_rank_cd` of
the term alone (the term's positions are its occurrences); and the memory's length in
words against the average. FTS5 counts the row's two scope tokens (sqlite_index_scope.py)
in its length: counted here too. The weights, IDFs and the average are computed in SQL
with the float operations Python's relevance.py and search_terms.py use, in the same
order, so the choice of terms, the scores and the gate are the same bits.

Each term's part is computed over the memories that hold it (found by the GIN index, a
scan per term, LATERAL), and the parts summed per memory in the order of the terms, as
FTS5 sums them (the same bits whatever order a plan leaves them in): a term a memory does
not hold costs it nothing (taking every term's frequency of every memory matched took
20-30% longer at 10,000 memories in one project). When the terms are ANDed, every part
ranks the memories holding all of them: found once (`holding_all`), not once per term
(100,000 memories over 200 projects: common words ANDed cost 4 ms of GIN work a term).
The AND's matches are counted (of every user, up to one more than MATCHED_MEMORIES) only
when even the rarest term holds too many. Only the best rows are read whole, with the
terms of the question each holds (what relevance.py needs, read off its words rather
than stemmed again), and the question's counts, from which the caller weighs the
question as relevance.py does.
"""

from __future__ import annotations

from typing import Any

from memory_proxy.stores.postgres_term_counts import ALL_MEMORIES, TABLE, TOKENS, lexeme
from memory_proxy.stores.relevance import weight
from memory_proxy.stores.search_terms import MATCHED_MEMORIES

K1, B = 1.2, 0.75  # FTS5's
SCOPE_TOKENS = 2  # in each row's length, as FTS5 counts them
MIN_IDF = 1e-6  # FTS5's, for a term more than half the memories hold
# relevance.py's reaches(): its rounding allowance
SHARE_ALLOWANCE = 1e-9

# The parameters: the question's terms and their lexemes (in the question's order), the
# share a memory must cover, the WHERE's (twice), the most memories returned. `weight` is
# relevance.weight, `idf` FTS5's; `rarest` and `taken` are search_terms.py's choice: the
# terms some memory holds, fewest memories first (ties in the question's order), none
# when together they weigh less than the share; ORed while they hold at most
# MATCHED_MEMORIES together, else the fewest ANDed whose matches are within it (`tries`:
# evaluated only then), else all of them.
_SEARCH = f"""
WITH RECURSIVE question AS MATERIALIZED (
    SELECT q.n, q.term, q.lexeme,
        coalesce((SELECT memories FROM {TABLE} WHERE term = q.term), 0) AS held
    FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS q (term, lexeme, n)
), totals AS MATERIALIZED (
    SELECT coalesce((SELECT memories FROM {TABLE} WHERE term = '{ALL_MEMORIES}'), 0) AS memories,
        coalesce((SELECT memories FROM {TABLE} WHERE term = '{TOKENS}'), 0) AS tokens
), weighed AS MATERIALIZED (
    SELECT q.n, q.term, q.lexeme, q.held,
        ln(1 + ((greatest(totals.memories, seen) - seen)::float8 + 0.5)
            / (seen::float8 + 0.5)) AS weight,
        ln(((totals.memories - q.held)::float8 + 0.5) / (q.held::float8 + 0.5)) AS idf
    FROM question AS q, totals, LATERAL (SELECT greatest(q.held, 1) AS seen) AS s
), passing AS MATERIALIZED (
    SELECT bool_or(held > 0) AND coalesce(sum(weight ORDER BY held, n) FILTER (WHERE held > 0)
        / sum(weight ORDER BY n) >= %s::float8 - {SHARE_ALLOWANCE}, false) AS passes
    FROM weighed
), rarest AS MATERIALIZED (
    SELECT term, lexeme, idf, row_number() OVER fewest AS rank,
        sum(held) OVER fewest AS together,
        string_agg(lexeme, ' & ') OVER fewest AS anded
    FROM weighed WHERE held > 0 AND (SELECT passes FROM passing)
    WINDOW fewest AS (ORDER BY held, n ROWS UNBOUNDED PRECEDING)
), tries (rank, found) AS (
    SELECT 1::bigint, {MATCHED_MEMORIES + 1}::bigint
    UNION ALL
    SELECT r.rank, (
        SELECT count(*) FROM (
            SELECT FROM memories WHERE words @@ r.anded::tsquery LIMIT {MATCHED_MEMORIES + 1}
        ) AS matched
    )
    FROM tries JOIN rarest AS r ON r.rank = tries.rank + 1
    WHERE tries.found > {MATCHED_MEMORIES} AND r.rank < (SELECT count(*) FROM rarest)
), choice AS MATERIALIZED (
    SELECT every, CASE WHEN every
        THEN coalesce(
            (SELECT min(rank) FROM tries WHERE found <= {MATCHED_MEMORIES}),
            (SELECT count(*) FROM rarest))
        ELSE (SELECT count(*) FROM rarest WHERE together <= {MATCHED_MEMORIES})
    END AS taken
    FROM (SELECT (SELECT together FROM rarest WHERE rank = 1) > {MATCHED_MEMORIES} AS every)
        AS e
), matched AS MATERIALIZED (
    SELECT r.rank, c.every, r.lexeme::tsquery AS term,
        CASE WHEN c.every THEN all_of.anded::tsquery ELSE r.lexeme::tsquery END AS ranks,
        CASE WHEN r.idf > 0 THEN r.idf ELSE {MIN_IDF}::float8 END AS idf,
        (t.tokens + {SCOPE_TOKENS} * t.memories)::float8
            / greatest(t.memories, 1)::float8 AS average
    FROM choice AS c, totals AS t, rarest AS r,
        LATERAL (SELECT anded FROM rarest WHERE rank = c.taken) AS all_of
    WHERE r.rank <= c.taken
    ORDER BY r.rank
), holding_all AS MATERIALIZED (
    SELECT seq, words, length FROM memories
    WHERE words @@ (SELECT ranks FROM matched WHERE rank = 1) AND {{where}}
), best AS (
    SELECT seq, {K1 + 1} * sum(part) AS score
    FROM (
        SELECT seq, matched.idf * frequency / (frequency + saturation) AS part
        FROM matched, LATERAL (
            SELECT seq, ts_rank_cd('{{{{1,1,1,1}}}}', words, matched.term, 0) AS frequency,
                {K1} * (1 - {B} + {B}::float8 * (length + {SCOPE_TOKENS}) / matched.average)
                    AS saturation
            FROM (
                SELECT seq, words, length FROM memories
                WHERE NOT matched.every AND words @@ matched.ranks AND {{where}}
                UNION ALL
                SELECT seq, words, length FROM holding_all WHERE matched.every
            ) AS holding
            OFFSET 0
        ) AS part
        ORDER BY seq, matched.rank
    ) AS parts
    GROUP BY seq
    ORDER BY score DESC, seq LIMIT %s
)
SELECT {{columns}}, best.score,
    tsvector_to_array(ts_filter(setweight(m.words, 'A', (SELECT array_agg(term) FROM question)),
        '{{{{a}}}}')),
    (SELECT array_agg(held ORDER BY n) FROM question), (SELECT memories FROM totals)
FROM best
JOIN memories AS m USING (seq)
ORDER BY best.score DESC, seq
"""


def statement(columns: list[str], where: str) -> str:
    """The search returning the `columns` of the best memories that meet `where` (its
    parameters follow the share's in `arguments`, twice), best first, each with its score, the
    question's terms it holds, how many memories hold each term of the question, and how
    many memories there are: no row when no memory could cover the share."""
    return _SEARCH.format(where=where, columns=", ".join("m." + column for column in columns))


def arguments(
    question: list[str], min_share: float, params: tuple[Any, ...], limit: int
) -> tuple[Any, ...]:
    """The `statement`'s arguments: the `question`'s terms, a memory's `min_share` of
    their weight, the WHERE's `params`, and the `limit`."""
    return (question, [lexeme(term) for term in question], min_share, *params, *params, limit)


def weights(question: list[str], held: list[int], memories: int) -> dict[str, float]:
    """Each term of the `question` weighed (relevance.py) from how many of the `memories`
    hold it (`held`, in the question's order)."""
    return {term: weight(count, memories) for term, count in zip(question, held, strict=True)}
