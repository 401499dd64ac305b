"""How many memories hold each term, kept beside the index in `memory_terms`: the weights
of recall's relevance (relevance.py), and the terms a search can afford to match
(search_terms.py).

FTS5 can count a term's memories (fts5vocab), but only by reading its whole doclist: at
100,000 memories a common word costs as much as the search itself. Here a count is one
primary-key seek. The index keeps it in the transactions that add and forget memories;
the row keyed '' counts the memories (no stem is empty). A term's row goes when its last
memory does: forgetting leaves no word of a forgotten memory behind. A scope token of
the index (its user's, its user and project's) is counted too, under SCOPE + the token:
a search leaves out a scope that holds more memories than its words.

Terms are counted as SQLite's porter tokenizer indexes the text (porter.py stems
exactly as it does), so the counts are the index's own.
"""

from __future__ import annotations

import collections
import json
import sqlite3
from collections.abc import Iterable

import orjson

from memory_proxy.stores.recall_query import fts5_phrase
from memory_proxy.stores.relevance import terms_of
from memory_proxy.stores.search_terms import MATCHED_MEMORIES, anded, ored, rarest_held

TABLE = "memory_terms"
CREATE = f"CREATE TABLE {TABLE} (term TEXT PRIMARY KEY, memories INTEGER NOT NULL) WITHOUT ROWID"
ALL_MEMORIES = ""  # the row counting every memory
SCOPE = " "  # before a scope token's count (no stem holds a space)
_MATCHES = "SELECT COUNT(*) FROM memories_fts WHERE memories_fts MATCH ?"
# One row (a JSON object), so that a search takes the GIL back once, not once per term.
_COUNTS = (
    f"SELECT json_group_object(term, memories) FROM {TABLE} "
    "WHERE term IN (SELECT value FROM json_each(?1))"
)
# `WHERE true`: without it SQLite would read ON CONFLICT as the join's constraint.
_CHANGE = (
    f"INSERT INTO {TABLE} (term, memories) SELECT key, value FROM json_each(?1) WHERE true "
    "ON CONFLICT (term) DO UPDATE SET memories = memories + excluded.memories"
)
_REMOVE_UNHELD = (
    f"DELETE FROM {TABLE} WHERE term IN (SELECT key FROM json_each(?1)) AND memories <= 0"
)


def count(db: sqlite3.Connection, indexed: Iterable[tuple[str, str]], change: int) -> None:
    """Counts the terms and scope tokens of memories added (`change` 1) or forgotten (-1),
    each given as (text, scope column); inside the caller's transaction."""
    terms: list[str] = []
    scopes: collections.Counter[str] = collections.Counter()
    for text, scope in indexed:
        terms += terms_of(text)
        scopes[scope] += 1
    if not scopes:
        return
    # Counted in one go, a batch's scopes (mostly one) once each: a Counter updated per
    # memory cost more than the stemming.
    counts = collections.Counter(terms)
    for scope, memories in scopes.items():
        for token in scope.split():
            counts[SCOPE + token] += memories
    counts[ALL_MEMORIES] += scopes.total()
    # One JSON object of every change: two statements, not one per term (sqlite_bulk.py).
    changes = json.dumps({term: change * n for term, n in counts.items()}, ensure_ascii=False)
    db.execute(_CHANGE, (changes,))
    if change < 0:
        db.execute(_REMOVE_UNHELD, (changes,))


def counts(
    db: sqlite3.Connection, terms: list[str], scope: str | None
) -> tuple[dict[str, int], int, int]:
    """How many memories hold each of `terms` (absent: none), how many there are, and
    how many the `scope` token holds (None: every memory)."""
    keys = [ALL_MEMORIES, *terms] if scope is None else [ALL_MEMORIES, SCOPE + scope, *terms]
    # orjson: a search's terms are stems of a question's words (no lone surrogate), and
    # the json module's encoder and decoder cost a search ~5 us more.
    (counted,) = db.execute(_COUNTS, (orjson.dumps(keys).decode(),)).fetchone()
    found: dict[str, int] = orjson.loads(counted)
    memories = found.get(ALL_MEMORIES, 0)
    in_scope = memories if scope is None else found.get(SCOPE + scope, 0)
    return {term: found.get(term, 0) for term in terms}, memories, in_scope


def matched_words(
    db: sqlite3.Connection,
    words: dict[str, str],
    held: dict[str, int],
    weights: dict[str, float],
    min_share: float,
) -> str:
    """The FTS5 expression a search matches (search_terms.py), for the question's `words`
    (stem -> a word of the question that gives it) held by `held` memories each and
    weighing `weights`; "" when no memory can cover `min_share` of the weight."""
    rarest = rarest_held(held, weights, min_share)
    if not rarest:
        return ""
    terms, joined = ored(rarest, held), " OR "
    if terms is None:
        terms, joined = rarest, " AND "
        for fewer in anded(rarest):
            (found,) = db.execute(_MATCHES, (_expression(words, fewer, joined),)).fetchone()
            if found <= MATCHED_MEMORIES:
                terms = fewer
                break
    return _expression(words, terms, joined)


def _expression(words: dict[str, str], terms: list[str], joined: str) -> str:
    return "text : (" + joined.join(fts5_phrase(words[term]) for term in terms) + ")"


def fill(db: sqlite3.Connection) -> None:
    """The table made and filled from the index (a file from before it): FTS5 reads each
    term's doclist once, through a temporary fts5vocab table."""
    db.execute(CREATE)
    db.execute("CREATE VIRTUAL TABLE temp.memories_vocab USING fts5vocab (main, memories_fts, col)")
    db.execute(
        f"INSERT INTO {TABLE} (term, memories) SELECT iif(col = 'scope', ?, '') || term, doc "
        "FROM temp.memories_vocab",
        (SCOPE,),
    )
    db.execute(
        f"INSERT INTO {TABLE} (term, memories) SELECT ?, COUNT(*) FROM memories HAVING COUNT(*)",
        (ALL_MEMORIES,),
    )
    db.execute("DROP TABLE temp.memories_vocab")
