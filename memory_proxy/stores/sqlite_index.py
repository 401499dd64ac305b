"""Long-term memories in the SQLite file, searched with FTS5's BM25.

Layout (sqlite_index_schema.py): `memories` holds the records, texts packed (short ones
plain); `memories_fts`, a contentless FTS5 index over the texts, is written beside it in
the same transactions (FTS5 needs a text to index it, and the values it indexed to 'delete').

Forgetting erases: a forgotten memory's row is zeroed (secure_delete), its index entries
are merged away by rewriting the index into one segment ('optimize': until then a deleted
row's words stay in the old segments, and its 'delete' writes them once more), then the
freed pages are given back and the -wal emptied (sqlite_space.py). The optimize costs
about 16 us of CPU per memory in the file (1.6 s for 100,000 here), so forgetting and
pruning do it once per call, not per row. ('merge' removes nothing until it reaches the
oldest segment; a negative 'merge' between writes corrupted the index on SQLite 3.40.)

Search is per (user, project): each row's `scope` column holds two opaque tokens, one for
its user and one for its user+project, and a search ANDs the right one with the query's
words. FTS5 then scores only that user's (or project's) rows instead of every match in the
file. At 100,000 memories over 200 projects (synthetic text, raw SQL) a search took ~1 ms
of CPU this way, ~5 ms filtering after a join, and ~16 ms with UNINDEXED user/project
columns (an external-content table reads those from `memories` row by row);
scripts/bench_recall.py measures the whole call. A search matches only the question's
rarer words, as many as hold at most MATCHED_MEMORIES memories together (search_terms.py,
from the counts of sqlite_term_counts.py): FTS5 scores every row a word matches, and
words most memories hold cost the most and weigh the least. Relevance (relevance.py)
weighs every word.

The scope column weighs nothing in the score, and the exact user_id/project comparison
stays in the SQL, so even a token collision could not leak a memory. Every user's
memories (the memories API and CLI for a trusted caller; recall always names a user) need
no token of their own, so files written before need no migration (a token
held by every row would only add its whole doclist to each search). Without a project the
search has no scope clause; with one it ORs that project's token of each user in the file
(found by a skip-scan of the user index), up to `max_scoped_users`. Where the match alone
selects the rows, FTS5 ranks alone and only the best rows are read from `memories`. CPU per
search of 100,000 memories, before words were bounded (API page of 50): 20 users x 10
projects: one user 5.9 ms, every user 22 ms, every user's one project 7.7 ms; 1,000
users: every user's one project 30 ms (80 ORed tokens cost 24 ms). Listing every user's
newest first uses an index on `created_at` (built when a file from before is opened).

A private model's memories are marked (`private`, added to files from before when they
are opened, sqlite_index_schema.py: every memory there was a hosted model's). A search
for any other request leaves them out in its SQL, before the limit, so they never take a
hosted request's place or reach it.

Searches have their own connection and thread (search_thread.py); writes go through the file's.
The texts and terms of recent hits are kept there (recent_hits.py), read once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncGenerator, Awaitable, Collection
from pathlib import Path
from typing import Any

from memory_proxy.records.memory import MemoryRecord, Privacy, ProjectInfo, Recalled, SessionSummary
from memory_proxy.stores import sqlite_term_counts as term_counts
from memory_proxy.stores.base import FileUse
from memory_proxy.stores.packed_text import pack_unless_short, unpack
from memory_proxy.stores.recall_query import fts5_phrase, query_terms
from memory_proxy.stores.recent_hits import RecentHits
from memory_proxy.stores.relevance import no_hits, relevant, weight, words_by_stem
from memory_proxy.stores.search_admission import DEFAULT_BUDGET
from memory_proxy.stores.search_terms import MATCHED_MEMORIES
from memory_proxy.stores.search_thread import SearchThread
from memory_proxy.stores.session_summaries import recent_sessions
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_bulk import insert_rows
from memory_proxy.stores.sqlite_index_schema import MIGRATIONS
from memory_proxy.stores.sqlite_index_scope import index_scope, project_token, search_token
from memory_proxy.stores.sqlite_index_sql import (
    RECORD_COLUMNS,
    SCORE_COLUMN,
    SEARCH,
    SEARCH_EVERY_USER,
    STORED_OF,
    USERS,
    best_rows,
)
from memory_proxy.stores.sqlite_index_sql import record as _record
from memory_proxy.stores.sqlite_space import used_bytes
from memory_proxy.stores.sqlite_vectors import VECTORS, SQLiteVectors

_FORGET_BATCH = 500  # texts held at once while forgetting
_IDS_PER_QUERY = 500  # bound variables in one statement, well under SQLite's limit


def _fields(record: MemoryRecord) -> tuple[Any, ...]:
    """A record's columns before its text."""
    r = record
    return (r.id, r.user_id, r.project, r.session_id, r.client, r.model, r.created_at)


class SQLiteMemoryIndex:
    """The MemoryIndex in a SQLite file (or IN_MEMORY), on its own connections and threads;
    `search_budget`: the seconds a search may take, waiting included (recall.timeout_ms)."""

    # A project of every user is searched with each user's token up to this many users;
    # beyond, with none (the ORed tokens would cost more than scoring every match).
    max_scoped_users = 64

    def __init__(self, path: Path, search_budget: float = DEFAULT_BUDGET) -> None:
        self._file = SQLiteFile(path, "memories", MIGRATIONS)
        self._searches = SearchThread(self._file.reader(), search_budget)
        self._recent_hits = RecentHits()  # read on the searches' thread only
        # recall.embedding_model's, searched on a thread of their own: a slow scan of vectors
        # never holds back or skews the word searches' budget
        self.vectors = SQLiteVectors(self._file, SearchThread(self._file.reader(), search_budget))

    @property
    def _db(self) -> sqlite3.Connection:
        return self._file.db  # the file's current connection: it may be opened anew

    async def add(self, records: list[MemoryRecord]) -> None:
        if not records:
            return

        def work() -> None:
            with self._file.transaction():
                new = self._not_stored(records)
                if not new:
                    return
                # Each row's seq as SQLite would give it (the largest + 1), so that the
                # full-text rows are written beside them in one statement: a batch is a
                # few statements, not several per memory (sqlite_bulk.py). The texts are
                # bound, not sent in JSON: SQLite's JSON cuts a text at a NUL.
                (last,) = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM memories").fetchone()
                scopes = [index_scope(r.user_id, r.project) for r in new]
                rows = [
                    (seq, *_fields(r), pack_unless_short(r.text.encode()), int(r.private))
                    for seq, r in enumerate(new, last + 1)
                ]
                insert_rows(self._db, f"INSERT INTO memories (seq, {RECORD_COLUMNS})", rows)
                texts = [(r.text, scope) for r, scope in zip(new, scopes, strict=True)]
                indexed = [(row[0], *text) for row, text in zip(rows, texts, strict=True)]
                insert_rows(self._db, "INSERT INTO memories_fts (rowid, text, scope)", indexed)
                term_counts.count(self._db, texts, 1)

        await self._file.run(work)

    def _not_stored(self, records: list[MemoryRecord]) -> list[MemoryRecord]:
        """The records to add: not in the file yet, the first of each id (as INSERT OR
        IGNORE row by row kept them); inside the caller's transaction."""
        ids = json.dumps([r.id for r in records], ensure_ascii=False)
        stored = {row[0] for row in self._db.execute(STORED_OF, (ids,))}
        new: dict[str, MemoryRecord] = {}
        for r in records:
            if r.id not in stored:
                new.setdefault(r.id, r)
        return list(new.values())

    def search(
        self,
        user_id: str | None,
        project: str | None,
        query: str,
        *,
        limit: int,
        exclude_session: str | None = None,
        min_share: float = 0.0,
        fill_share: float | None = None,
        privacy: Privacy = "hosted",
    ) -> Awaitable[list[Recalled]]:
        """Taken, or refused (SearchBusy), when called: a refused search costs no coroutine."""
        terms = query_terms(query)
        private_too = privacy == "private"
        if not terms or limit <= 0:
            return no_hits()

        def work(db: sqlite3.Connection) -> list[Recalled]:
            question = words_by_stem(terms)  # here: a search refused at once stems nothing
            token = None if user_id is None else search_token(user_id, project)
            held, memories, in_scope = term_counts.counts(db, list(question), token)
            weights = {term: weight(count, memories) for term, count in held.items()}
            words = term_counts.matched_words(db, question, held, weights, min_share)
            if not words:
                return []
            # A scope holding more memories than the words costs more than it saves: the
            # SQL's exact comparison of user and project selects the rows then.
            wide = in_scope > MATCHED_MEMORIES
            scope = None if wide else self._scope(db, user_id, project)
            match = words if scope is None else f"scope : ({scope}) AND {words}"
            alone = user_id is None and exclude_session is None and (project is None or scope)
            rows: list[tuple[Any, ...]] | None
            if alone and private_too:
                # The match alone selects the rows: ranked in FTS5, only the best read.
                rows = db.execute(SEARCH_EVERY_USER, (match, limit, project)).fetchall()
            else:
                params = (match, user_id, project, exclude_session, limit, private_too)
                rows = best_rows(db, params, limit)
                if rows is None:  # too few of the best ranked may be returned
                    rows = db.execute(SEARCH, params).fetchall()
            scored = []
            for row in rows:
                record, held_terms = self._recent_hits.read(row[:SCORE_COLUMN])
                scored.append((record, row[SCORE_COLUMN], held_terms))
            return relevant(scored, weights, min_share, fill_share)

        return self._searches.run(work)

    def _scope(
        self, db: sqlite3.Connection, user_id: str | None, project: str | None
    ) -> str | None:
        """The scope tokens a search ANDs with its words (an FTS5 expression), or None:
        every row; on the search thread."""
        if user_id is not None:
            return fts5_phrase(search_token(user_id, project))
        if project is None:
            return None
        limit = self.max_scoped_users + 1
        users = [user for (user,) in db.execute(USERS + " LIMIT ?", (limit,))]
        if not users or len(users) == limit:
            return None
        return " OR ".join(fts5_phrase(project_token(user, project)) for user in users)

    async def list_memories(
        self,
        user_id: str | None,
        project: str | None,
        limit: int,
        offset: int,
        *,
        before: float | None = None,
        privacy: Privacy = "private",
    ) -> list[MemoryRecord]:
        """Newest first."""
        where, params = self._where(user_id, project)
        private_too = privacy == "private"

        def work() -> list[MemoryRecord]:
            rows = self._db.execute(
                f"SELECT {RECORD_COLUMNS} FROM memories WHERE {where} "
                "AND (? IS NULL OR created_at < ?) AND (? OR private = 0) "
                "ORDER BY created_at DESC, seq DESC LIMIT ? OFFSET ?",
                (*params, before, before, private_too, limit, offset),
            ).fetchall()
            return [_record(row) for row in rows]

        return await self._file.run(work)

    async def recent_sessions(
        self, user_id: str, project: str, limit: int, *, privacy: Privacy = "hosted"
    ) -> list[SessionSummary]:
        private_too = privacy == "private"
        return await self._file.run(
            lambda: recent_sessions(self._db, user_id, project, limit, private_too)
        )

    async def get(self, user_id: str | None, memory_id: str) -> MemoryRecord | None:
        def work() -> MemoryRecord | None:
            row = self._db.execute(
                f"SELECT {RECORD_COLUMNS} FROM memories WHERE id = ?1 "
                "AND (?2 IS NULL OR user_id = ?2)",
                (memory_id, user_id),
            ).fetchone()
            return _record(row) if row else None

        return await self._file.run(work)

    async def stored(self, memory_ids: Collection[str]) -> set[str]:
        """Those of `memory_ids` stored already: an import says how many it adds."""
        ids = list(memory_ids)

        def work() -> set[str]:
            found: set[str] = set()
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                marks = ", ".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT id FROM memories WHERE id IN ({marks})", chunk)
                found.update(row[0] for row in rows)
            return found

        return await self._file.run(work)

    async def delete(self, user_id: str | None, memory_id: str) -> bool:
        where = "id = ?1 AND (?2 IS NULL OR user_id = ?2)"
        return await self._forget_and_erase(where, (memory_id, user_id)) > 0

    async def forget_project(self, user_id: str | None, project: str) -> int:
        return await self._forget_and_erase(*self._where(user_id, project))

    async def forget_user(self, user_id: str) -> int:
        return await self._forget_and_erase("user_id = ?", (user_id,))

    async def forget_older_than(self, moment: float, limit: int) -> int:
        """Up to `limit` of the oldest memories made before `moment`, forgotten (not yet
        erased: see `erase`)."""
        where = "created_at < ? ORDER BY created_at LIMIT ?"
        return await self._file.run(lambda: self._forget(where, (moment, limit)))

    async def forget_oldest(self, limit: int) -> int:
        """The `limit` oldest memories, forgotten (not yet erased: see `erase`)."""
        where = "1 ORDER BY created_at LIMIT ?"
        return await self._file.run(lambda: self._forget(where, (limit,)))

    async def erase(self) -> bool:
        """What forgotten memories left in the file and its log, removed (the index
        rewritten, free pages given back, the log emptied); False when another connection
        held the log back: the caller tries again later."""
        return await self._file.run(self._erase)

    async def used_bytes(self) -> int:
        return await self._file.run(lambda: used_bytes(self._db))

    async def use(self) -> FileUse:
        def work() -> FileUse:
            (count,) = self._db.execute("SELECT COUNT(*) FROM memories").fetchone()
            return FileUse(used_bytes(self._db), count)

        return await self._file.run(work)

    async def _forget_and_erase(self, where: str, params: tuple[Any, ...]) -> int:
        def work() -> int:
            forgotten = self._forget(where, params)
            if forgotten:
                self._erase()
            return forgotten

        return await self._file.run(work)

    def _forget(self, where: str, params: tuple[Any, ...]) -> int:
        """Deletes the memories `where` selects, and their index entries, in one
        transaction (so that no other connection deletes a row between: a second
        'delete' of the same row would corrupt a contentless index). Texts are read a
        batch at a time: a whole user may hold thousands."""
        forgotten: list[tuple[int]] = []
        with self._file.transaction():
            rows = self._db.execute(
                f"SELECT seq, user_id, project, text FROM memories WHERE {where}", params
            )
            while batch := rows.fetchmany(_FORGET_BATCH):
                texts = [unpack(text) for *_, text in batch]
                scopes = [index_scope(user, project) for _, user, project, _ in batch]
                term_counts.count(self._db, zip(texts, scopes, strict=True), -1)
                self._db.executemany(
                    "INSERT INTO memories_fts (memories_fts, rowid, text, scope) "
                    "VALUES ('delete', ?, ?, ?)",
                    [
                        (seq, text, scope)
                        for (seq, *_), text, scope in zip(batch, texts, scopes, strict=True)
                    ],
                )
                forgotten += [(seq,) for seq, *_ in batch]
            self._db.executemany("DELETE FROM memories WHERE seq = ?", forgotten)
            self._db.executemany(f"DELETE FROM {VECTORS} WHERE seq = ?", forgotten)
        return len(forgotten)

    def _erase(self) -> bool:
        self._db.execute("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')")
        return self._file.erase_traces()

    async def projects(self, user_id: str | None) -> list[ProjectInfo]:
        """Most recently used first."""
        where, params = self._where(user_id, None)

        def work() -> list[ProjectInfo]:
            rows = self._db.execute(
                "SELECT user_id, project, COUNT(*), MAX(created_at) FROM memories "
                f"WHERE {where} GROUP BY user_id, project ORDER BY 4 DESC",
                params,
            ).fetchall()
            return [ProjectInfo(*row) for row in rows]

        return await self._file.run(work)

    async def export(
        self, user_id: str | None, project: str | None, *, batch: int = 500
    ) -> AsyncGenerator[list[MemoryRecord], None]:
        """Oldest first, in batches, from one statement: it reads one snapshot of the
        file (WAL), so memories a running proxy adds meanwhile are neither half-read nor
        read twice, as paging with offsets would."""
        cursor = await self._file.run(
            lambda: self._db.execute(
                f"SELECT {RECORD_COLUMNS} FROM memories "
                "WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR project = ?2) ORDER BY seq",
                (user_id, project),
            )
        )
        try:
            while rows := await self._file.run(lambda: cursor.fetchmany(batch)):
                yield [_record(row) for row in rows]
        finally:
            await self._file.run(cursor.close)

    async def aclose(self) -> None:
        self._searches.stop()
        self.vectors.stop()
        await self._file.aclose()

    @staticmethod
    def _where(user_id: str | None, project: str | None) -> tuple[str, tuple[str, ...]]:
        """Separate statements per case, so that each uses its index (every user's:
        `memories_by_time` for the order, or none)."""
        if user_id is None:
            return ("1", ()) if project is None else ("project = ?", (project,))
        if project is None:
            return "user_id = ?", (user_id,)
        return "user_id = ? AND project = ?", (user_id, project)
