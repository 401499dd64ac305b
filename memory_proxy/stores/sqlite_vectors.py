"""Memories' vectors (`recall.embedding_model`), beside the index in the SQLite file.

`memory_vectors` holds one float32 vector per memory, keyed by the memory's `seq`, unit
length (so a dot product is the cosine); the memory index deletes it with its memory in
the same transaction, so forgetting erases it too (secure_delete zeroes the row). Vectors
are added after their memory, off the request path (memory/embedding_writer.py), only
while the memory is still there.

Search is brute force over the rows of one user's project, scoped in SQL exactly as the
lexical search (user, project, session left out, private models' memories), on a search
thread of its own (a search past `recall.timeout_ms` is interrupted, and never delays a
word search): one matrix product in numpy. It reads every vector of the project
per search, so its cost grows with the project (README, "Recall quality").
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memory_proxy.records.memory import MemoryRecord, Privacy
from memory_proxy.stores.packed_text import unpack
from memory_proxy.stores.search_thread import SearchThread
from memory_proxy.stores.sqlite import SQLiteFile
from memory_proxy.stores.sqlite_index_sql import RECORD_COLUMNS, record

if TYPE_CHECKING:
    import numpy as np

VECTORS = "memory_vectors"
_IN_SCOPE = f"""
SELECT v.seq, v.vector FROM {VECTORS} v JOIN memories m ON m.seq = v.seq
WHERE m.user_id = ?1 AND m.project = ?2 AND (?3 IS NULL OR m.session_id IS NOT ?3)
      AND (?4 OR m.private = 0)
"""
_UNEMBEDDED = f"""
SELECT seq, text FROM memories m
WHERE seq > ?1 AND (?3 OR private = 0)
      AND NOT EXISTS (SELECT 1 FROM {VECTORS} v WHERE v.seq = m.seq)
ORDER BY seq LIMIT ?2
"""


def unit(vector: Sequence[float]) -> np.ndarray:
    """`vector` as float32 of length 1 (a zero vector stays zero)."""
    import numpy as np  # loaded by the first vector: only with recall.embedding_model

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm else array


class SQLiteVectors:
    """The vectors of one memory index's file: written on its writer, searched on a search
    thread of their own (`searches`, stopped with the index)."""

    def __init__(self, file: SQLiteFile, searches: SearchThread) -> None:
        self._file = file
        self._searches = searches

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
        """Each memory's vector, unless the memory was forgotten meanwhile."""

        def work() -> None:
            with self._file.transaction():
                self._file.db.executemany(
                    f"INSERT OR REPLACE INTO {VECTORS} (seq, vector) "
                    "SELECT ?1, ?2 WHERE EXISTS (SELECT 1 FROM memories WHERE seq = ?1)",
                    [(seq, unit(vector).tobytes()) for seq, vector in vectors],
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
        their cosine, best first."""
        question = unit(vector)
        private_too = privacy == "private"

        def work(db: sqlite3.Connection) -> list[tuple[MemoryRecord, float]]:
            rows = db.execute(_IN_SCOPE, (user_id, project, exclude_session, private_too))
            seqs, blobs = [], []
            for seq, blob in rows:
                if len(blob) == question.nbytes:  # another model's vectors: not comparable
                    seqs.append(seq)
                    blobs.append(blob)
            if not seqs:
                return []
            import numpy as np  # loaded already by unit()

            matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(seqs), -1)
            cosines = matrix @ question
            best = np.argsort(-cosines)[:limit]
            chosen = {seqs[i]: float(cosines[i]) for i in best}
            marks = ", ".join("?" * len(chosen))
            found = db.execute(
                f"SELECT seq, {RECORD_COLUMNS} FROM memories WHERE seq IN ({marks})", list(chosen)
            ).fetchall()
            hits = [(record(row[1:]), chosen[row[0]]) for row in found]
            return sorted(hits, key=lambda hit: -hit[1])

        return await self._searches.run(work)

    def stop(self) -> None:
        self._searches.stop()
