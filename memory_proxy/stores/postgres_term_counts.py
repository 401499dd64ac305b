"""How many memories hold each term, kept beside PostgreSQL's index in `memory_terms` as
the SQLite file keeps them (sqlite_term_counts.py): the weights of recall's relevance
(relevance.py) and of the ranking, and the terms a search can afford to match
(search_terms.py): read by the search's one statement (postgres_search.py).

The terms are SQLite's. Each memory's `words` is a tsvector made here of the porter stems
of its text (porter.py stems exactly as SQLite's tokenizer does), not by PostgreSQL's
`english` configuration, whose Snowball stemmer stems some words otherwise: so the
counts, the weights and the matches are the same on both indexes. A stem's positions are
its occurrences numbered 1, 2, ... (PostgreSQL keeps 256 at most): `ts_rank_cd` of that
stem alone, every weight 1, is then how often the text holds it, BM25's term frequency. A
word longer than a tsvector's lexeme may be (2,046 bytes) is not indexed.

The counts are kept by the statement that adds or forgets memories, from the tsvectors it
inserts or deletes (the index's own): the row keyed '' counts the memories, the row keyed
TOKENS their words (BM25's average length), and a term's row goes when its last memory
does. A statement updates its term rows in term order, so that proxies adding and
forgetting at once wait for each other, never deadlock.
"""

from __future__ import annotations

import collections

from psycopg import Connection

from memory_proxy.stores import porter
from memory_proxy.stores.packed_text import unpack

TABLE = "memory_terms"
CREATE = f"CREATE TABLE {TABLE} (term text PRIMARY KEY, memories bigint NOT NULL)"
ALL_MEMORIES = ""  # the row counting every memory
TOKENS = " tokens"  # the row counting every memory's words (no stem holds a space)
MAX_LEXEME_BYTES = 2046
MAX_POSITIONS = 256
_FILL_BATCH = 1000  # memories re-indexed per statement by the migration

# Counts the terms of the memories a data-modifying CTE named `changed` returned (their
# `words` and `length`), with `sign` 1 (added) or -1 (forgotten); answers how many there
# were, and the terms none holds any more (`DROP_UNHELD` removes them, after).
_COUNT = """
, change (term, memories) AS (
    SELECT term, count(*) FROM changed, unnest(tsvector_to_array(words)) AS term GROUP BY term
    UNION ALL SELECT '{all}', count(*) FROM changed
    UNION ALL SELECT '{tokens}', sum(length) FROM changed
), counted AS (
    INSERT INTO {table} (term, memories)
    SELECT term, {sign} * memories FROM change WHERE memories > 0 ORDER BY term
    ON CONFLICT (term) DO UPDATE SET memories = {table}.memories + excluded.memories
    RETURNING term, memories
)
SELECT (SELECT count(*) FROM changed), ARRAY(SELECT term FROM counted WHERE memories <= 0)
"""
DROP_UNHELD = f"DELETE FROM {TABLE} WHERE term = ANY(%s) AND memories <= 0"


def counting(sign: int) -> str:
    """The statement's end that counts what its `changed` CTE added (1) or forgot (-1)."""
    return _COUNT.format(all=ALL_MEMORIES, tokens=TOKENS, table=TABLE, sign=sign)


def tsvector_of(text: str) -> tuple[str, int]:
    """`text`'s terms as a tsvector (the text of one), and how many words it has."""
    occurrences = collections.Counter(porter.stem(word) for word in porter.words(text))
    lexemes = [
        f"{lexeme(term)}:" + ",".join(map(str, range(1, min(count, MAX_POSITIONS) + 1)))
        for term, count in occurrences.items()
        if len(term.encode()) <= MAX_LEXEME_BYTES
    ]
    return " ".join(lexemes), occurrences.total()


def lexeme(term: str) -> str:
    """`term` quoted as a tsvector's or a tsquery's lexeme, as it is (never stemmed again:
    a term is letters and digits, quoted all the same)."""
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"


def fill(db: Connection) -> None:
    """Every memory's words made anew from its text, and the table made and filled from
    them (the index written before it, by the `english` configuration); in the caller's
    transaction. The words' index is dropped meanwhile and built again in one pass, and
    the planner's statistics of the old words replaced."""
    reindexed = 0
    db.execute("DROP INDEX memories_words")
    db.execute("ALTER TABLE memories ADD COLUMN length integer NOT NULL DEFAULT 0")
    with db.cursor(name="memory_proxy_reindex") as memories:
        memories.execute("SELECT seq, text FROM memories")
        while batch := memories.fetchmany(_FILL_BATCH):
            made = [tsvector_of(unpack(bytes(text))) for _, text in batch]
            db.execute(
                "UPDATE memories m SET words = new.words::tsvector, length = new.length "
                "FROM unnest(%s::bigint[], %s::text[], %s::int[]) AS new (seq, words, length) "
                "WHERE m.seq = new.seq",
                ([seq for seq, _ in batch], [w for w, _ in made], [n for _, n in made]),
            )
            reindexed += len(batch)
    db.execute("ALTER TABLE memories ALTER COLUMN length DROP DEFAULT")
    db.execute("CREATE INDEX memories_words ON memories USING gin (words)")
    db.execute(CREATE)
    db.execute("WITH changed AS (SELECT words, length FROM memories)" + counting(1))
    if reindexed:
        db.execute("ANALYZE memories")
