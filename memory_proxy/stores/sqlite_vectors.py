"""Memories' vectors (`recall.embedding_model`), beside the index in the SQLite file.

`memory_vectors` holds one float32 vector per memory, keyed by the memory's `seq`, unit
length (so a dot product is the cosine); the memory index deletes it with its memory in
the same transaction, so forgetting erases it too (secure_delete zeroes the row). Vectors
are added after their memory, off the request path (memory/embeddings.py), only while
the memory is still there.

Search is brute force over one user's project, on a search thread of its own (a search
past `recall.timeout_ms` is interrupted, and never delays a word search), against the
project's vectors held in memory (vector_cache.py): reading them from the file at every
search cost 40-70 ms for 10,000 memories, the product itself 0.3 ms. Every process
sharing the file (`--workers`, other proxies, the CLI) keeps them true:

- Each batch of vectors added takes the next stamp (`memory_vector_changes.added`, bumped
  in the same transaction), so a search reads first that one row and then, when the
  stamp moved, only the vectors added since.
- Every vector deleted (a memory forgotten, pruned, its project or user forgotten, by
  whichever process) counts in `memory_vector_changes.removed`, by a trigger; a project
  held from before a removal is read again whole, off the search thread (on a loader
  thread of its own, never interrupted: the search that asked may be late, the next
  one finds it), and until then nothing of it is found by meaning.
- The row, the vectors added since and the memories found are read in one snapshot,
  and the memories with the SQL's exact scope (user, project, session left out,
  private models' memories): a memory is never found from a vector it no longer has,
  nor outside its scope, whatever is held in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from memory_proxy.errors import ProxyError
from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.packed_text import unpack
from memory_proxy.stores.search_thread import SearchThread
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_index_sql import RECORD_COLUMNS_OF_M, record
from memory_proxy.stores.sqlite_replaced import WatchedConnection
from memory_proxy.stores.worker_thread import WorkerThread

if TYPE_CHECKING:
    import numpy as np

    from memory_proxy.stores.vector_cache import FileState, ScopeKey, VectorCache

VECTORS = "memory_vectors"
# The projects' vectors held in memory, at most (but one), until `hold_at_most` says (the
# proxy says recall.vector_cache_mb): its default, 256 MB (tests/test_recall_config.py
# checks they agree), written here so that the index imports no config.
CACHE_BYTES = 256 * 1024 * 1024
_STATE = "SELECT file, added, removed FROM memory_vector_changes"
# ?1 user, ?2 project, ?3 the vector's length in bytes (another model's are not comparable)
_SCOPE = """
SELECT v.seq, v.vector, m.session_id, m.private
FROM memories m CROSS JOIN memory_vectors v ON v.seq = m.seq
WHERE m.user_id = ?1 AND m.project = ?2 AND length(v.vector) = ?3 AND v.added > ?4
"""
_COUNT = "SELECT COUNT(*) FROM memories WHERE user_id = ?1 AND project = ?2"
LOAD_BATCH = 4096  # rows read at once while a project's vectors are read whole
# The same, for the vectors stamped after ?4 only: found by their stamp first.
_ADDED_SINCE = """
SELECT v.seq, v.vector, m.session_id, m.private
FROM memory_vectors v CROSS JOIN memories m ON m.seq = v.seq
WHERE v.added > ?4 AND m.user_id = ?1 AND m.project = ?2 AND length(v.vector) = ?3
"""
_UNEMBEDDED = f"""
SELECT seq, text FROM memories m
WHERE seq > ?1 AND (?3 OR private = 0)
      AND NOT EXISTS (SELECT 1 FROM {VECTORS} v WHERE v.seq = m.seq)
ORDER BY seq LIMIT ?2
"""
# ?1 the seqs found (a JSON array), each looked up by its key: the project's index would
# be scanned whole otherwise.
_FOUND = f"""
SELECT m.seq, {RECORD_COLUMNS_OF_M} FROM json_each(?1) AS found
CROSS JOIN memories m ON m.seq = found.value
WHERE m.user_id = ?2 AND m.project = ?3 AND (?4 IS NULL OR m.session_id IS NOT ?4)
      AND (?5 OR m.private = 0)
"""


def unit(vector: Sequence[float]) -> np.ndarray:
    """`vector` as float32 of length 1 (a zero vector stays zero)."""
    import numpy as np  # loaded by the first vector: only with recall.embedding_model

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


class _Stale(ProxyError):
    """The project's vectors held in memory are not the file's: they are to be read."""


class SQLiteVectors:
    """The vectors of one memory index's file: written on its writer, searched on a search
    thread of their own (`searches`, stopped with the index), a project's read whole on a
    loader thread made with the first."""

    def __init__(
        self, file: SQLiteFile, searches: SearchThread, cache_bytes: int = CACHE_BYTES
    ) -> None:
        self._file = file
        self._searches = searches
        self._cache_bytes = cache_bytes
        self._cache: VectorCache | None = None
        self._loader: WorkerThread | None = None
        self._loader_connection: WatchedConnection | None = None
        self._loading: dict[ScopeKey, asyncio.Future[None]] = {}

    def hold_at_most(self, max_bytes: int) -> None:
        """The vectors held in memory, at most (`recall.vector_cache_mb`)."""
        self._cache_bytes = max_bytes
        if self._cache is not None:
            self._cache.max_bytes = max_bytes

    @property
    def cache(self) -> VectorCache:
        if self._cache is None:
            from memory_proxy.stores.vector_cache import VectorCache  # numpy: when used

            self._cache = VectorCache(self._cache_bytes)
        return self._cache

    async def unembedded(
        self, after: int, limit: int, *, private_too: bool = True
    ) -> list[tuple[int, str]]:
        """Up to `limit` memories past `seq` `after` without a vector: (seq, text); a
        private model's only when `private_too`."""

        def work() -> list[tuple[int, str]]:
            rows = self._file.db.execute(_UNEMBEDDED, (after, limit, private_too)).fetchall()
            return [(seq, unpack(text)) for seq, text in rows]

        return await self._file.run(work)

    async def add(self, vectors: Sequence[tuple[int, Sequence[float]]]) -> None:
        """Each memory's vector, unless the memory was forgotten meanwhile; stamped."""

        def work() -> None:
            with self._file.transaction():
                db = self._file.db
                (stamp,) = db.execute(
                    "UPDATE memory_vector_changes SET added = added + 1 RETURNING added"
                ).fetchone()
                db.executemany(
                    f"INSERT OR REPLACE INTO {VECTORS} (seq, vector, added) "
                    "SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM memories WHERE seq = ?1)",
                    [(seq, unit(vector).tobytes(), stamp) for seq, vector in vectors],
                )

        await self._file.run(work)

    async def nearest(
        self,
        user_id: str,
        project: str,
        vector: Sequence[float],
        *,
        limit: int,
        exclude_session: str | None = None,
        privacy: Privacy = "hosted",
    ) -> list[tuple[MemoryRecord, float]]:
        """The `limit` memories of the scope whose vectors are closest to `vector`, with
        their cosine, best first. SearchBusy when the project's vectors were read and
        changed again before they could be searched."""
        question = unit(vector)
        key: ScopeKey = (user_id, project, len(question))
        private_too = privacy == "private"
        cache = self.cache

        def work(db: sqlite3.Connection) -> list[tuple[MemoryRecord, float]]:
            with _snapshot(db):
                held = cache.get(key)
                state = _state(db)
                if held is None or not held.current(state):
                    raise _Stale
                if state.added > held.state.added:
                    added = _rows(db, _ADDED_SINCE, key, held.state.added).fetchall()
                    held.append(added, state.added)
                found = held.closest(
                    question, limit, exclude_session=exclude_session, private_too=private_too
                )
                return _records(db, found, key, exclude_session, private_too)

        try:
            return await self._searches.run(work)
        except _Stale:
            await asyncio.shield(self._load(key, cache))
        try:
            return await self._searches.run(work)
        except _Stale:  # the next search reads them again
            raise SearchBusy(
                f"the vectors of {user_id}'s project changed as they were read"
            ) from None

    def _load(self, key: ScopeKey, cache: VectorCache) -> asyncio.Future[None]:
        """The project's vectors read whole and held; one reading per project at a time,
        which goes on when its waiter leaves."""
        loading = self._loading.get(key)
        if loading is None:
            if self._loader is None:
                self._loader = WorkerThread("sqlite-vectors")
            loader = self._loader

            def work() -> None:
                from memory_proxy.stores.vector_cache import ScopeVectors

                if self._loader_connection is None:  # opened on its thread
                    self._loader_connection = self._file.reader()
                db = self._loader_connection.current()
                with _snapshot(db):
                    state = _state(db)
                    (expected,) = db.execute(_COUNT, key[:2]).fetchone()
                    scope = ScopeVectors(key[2], state, expected)
                    rows = _rows(db, _SCOPE, key)
                    while batch := rows.fetchmany(LOAD_BATCH):
                        scope.append(batch, state.added)
                cache.put(key, scope)

            loading = self._loading[key] = loader.run(work)
            loading.add_done_callback(lambda _: self._loading.pop(key))
        return loading

    def stop(self) -> None:
        self._searches.stop()
        if self._loader is not None:
            self._loader.stop()
        if self._loader_connection is not None:
            self._loader_connection.close()


@contextlib.contextmanager
def _snapshot(db: sqlite3.Connection) -> Iterator[None]:
    """One read transaction around the block, ended whatever happens (an interrupted
    read leaves it open: a snapshot held would keep the log from being emptied)."""
    db.execute("BEGIN")
    try:
        yield
    finally:
        if db.in_transaction:
            try:
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")


def _state(db: sqlite3.Connection) -> FileState:
    from memory_proxy.stores.vector_cache import FileState

    file, added, removed = db.execute(_STATE).fetchone()
    return FileState(file, added, removed)


def _rows(db: sqlite3.Connection, sql: str, key: ScopeKey, after: int = -1) -> sqlite3.Cursor:
    """The vectors of the project (seq, vector, session, private) `sql` selects."""
    user_id, project, dimensions = key
    return db.execute(sql, (user_id, project, dimensions * 4, after))


def _records(
    db: sqlite3.Connection,
    found: list[tuple[int, float]],
    key: ScopeKey,
    exclude_session: str | None,
    private_too: bool,
) -> list[tuple[MemoryRecord, float]]:
    """The memories of `found` (seq, cosine) still there and in scope, best first."""
    if not found:
        return []
    cosines = dict(found)
    seqs = "[" + ",".join(str(seq) for seq in cosines) + "]"
    rows = db.execute(_FOUND, (seqs, key[0], key[1], exclude_session, private_too))
    hits = [(record(row[1:]), cosines[row[0]]) for row in rows]
    return sorted(hits, key=lambda hit: -hit[1])
