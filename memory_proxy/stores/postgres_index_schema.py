"""The memory index's tables in PostgreSQL and the migrations that bring a database up to
them (the "memories" part of `schema_versions`: postgres_database.py applies them).

1. `memories`: the records, each text packed (packed_text.py: PostgreSQL's text cannot
   hold a NUL, and a packed text takes half the space), and `words`, the text's tsvector,
   with a GIN index; then made by PostgreSQL's `english` configuration.
2. `words` made anew of the porter stems SQLite's index holds, each memory's `length` in
   words, and `memory_terms`, the count of memories holding each term
   (postgres_term_counts.py): recall weighs words and ranks memories as on SQLite. Every
   memory is read and re-indexed, in the migration's one transaction. And a row is kept
   whole in its page up to 8 kB (`toast_tuple_target`; PostgreSQL's default, 2 kB, had
   one memory in eight with its words compressed or out of line): ranking reads a row's
   words once per term, and each read of a compressed or out-of-line one unpacked it
   again (10,000 memories in one project: ranked statement p50 3.2 -> 1.7 ms, p90 11.6
   -> 4.5 ms).
"""

from __future__ import annotations

from psycopg import Connection

from memory_proxy.stores import postgres_term_counts as term_counts
from memory_proxy.stores.postgres_database import PostgresMigration, run_script

_MEMORIES = """
CREATE TABLE memories (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id text NOT NULL UNIQUE,
    user_id text NOT NULL,
    project text NOT NULL,
    session_id text,
    client text NOT NULL,
    model text,
    created_at double precision NOT NULL,
    text bytea NOT NULL,
    private boolean NOT NULL DEFAULT false,
    words tsvector NOT NULL
);
CREATE INDEX memories_words ON memories USING gin (words);
CREATE INDEX memories_by_user ON memories (user_id, created_at);
CREATE INDEX memories_by_project ON memories (user_id, project, created_at);
CREATE INDEX memories_by_time ON memories (created_at);
"""


def _porter_words(db: Connection) -> None:
    db.execute("ALTER TABLE memories SET (toast_tuple_target = 8160)")  # the most it may be
    term_counts.fill(db)


MIGRATIONS: tuple[PostgresMigration, ...] = (
    PostgresMigration(
        1, "memories and their full-text index", lambda db: run_script(db, _MEMORIES)
    ),
    PostgresMigration(2, "words as SQLite's porter stems them, and their counts", _porter_words),
)
