"""The vectors of recently searched projects, held in memory as float32 matrices: a search
by meaning is then one matrix product (about 0.3 ms for 10,000 vectors of 256 dimensions
here) instead of reading every vector of the project from the file (40-70 ms).

One `ScopeVectors` per (user, project, dimensions): each memory's unit vector, its seq, its
session (as a small integer code) and whether a private model's. It records the state of
the file's vectors it holds (sqlite_vectors.py: the file's random id, the stamp of the
last vectors added, the count of vectors ever removed), so that whoever searches it can
tell whether it is still the file's: vectors added since are read and appended; any
removal makes it stale (it is loaded again), so that a forgotten memory's vector never
outlives its memory here.

`VectorCache` keeps them within a budget of bytes, the least recently searched dropped
first; a project larger than the whole budget is still kept, alone.

Imported with the first vector (numpy): a proxy without `recall.embedding_model` never
loads it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

GROWTH = 1.25  # a full matrix grows by this factor when vectors are appended
HEADROOM = 64  # rows of room made at a load, for the vectors that follow it


@dataclass(frozen=True)
class FileState:
    """Where the file's vectors stand (its `memory_vector_changes` row)."""

    file: str  # drawn when the table was made: another file at the path has another
    added: int  # the stamp of the newest vectors added
    removed: int  # vectors ever removed


ScopeKey = tuple[str, str, int]  # user, project, dimensions
# One vector as read from the file: seq, float32 bytes, session, private.
Row = tuple[int, bytes, "str | None", int]


class ScopeVectors:
    """The vectors of one (user, project) of one length; used by one thread at a time."""

    def __init__(self, dimensions: int, state: FileState, expected: int = 0) -> None:
        """Empty, at `state`, with room for `expected` vectors: `append` them."""
        room = expected + HEADROOM
        self.dimensions = dimensions
        self.state = state
        self._matrix = np.empty((room, dimensions), dtype=np.float32)
        self._seqs = np.empty(room, dtype=np.int64)
        self._sessions = np.empty(room, dtype=np.int32)
        self._private = np.empty(room, dtype=np.bool_)
        self._count = 0
        self._row_of: dict[int, int] = {}  # seq -> row
        self._session_codes: dict[str | None, int] = {}

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        arrays = (self._matrix, self._seqs, self._sessions, self._private)
        return sum(array.nbytes for array in arrays)

    def current(self, state: FileState) -> bool:
        """Whether the file still holds every vector held here (more may have been added
        since: `append` them)."""
        held = self.state
        return (state.file, state.removed) == (held.file, held.removed) and (
            state.added >= held.added
        )

    def append(self, rows: Sequence[Row], added: int) -> None:
        """Vectors added to the file since (a seq held already takes its new vector), up
        to the stamp `added`."""
        new = []
        for row in rows:
            at = self._row_of.get(row[0])
            if at is None:
                new.append(row)
            else:
                self._put(at, [row])
        if new:
            start = self._count
            self._reserve(start + len(new))
            self._count += len(new)
            self._put(start, new)
            self._row_of.update((row[0], start + n) for n, row in enumerate(new))
        self.state = FileState(self.state.file, max(self.state.added, added), self.state.removed)

    def _put(self, start: int, rows: Sequence[Row]) -> None:
        end = start + len(rows)
        blob = b"".join(row[1] for row in rows)
        self._matrix[start:end] = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), -1)
        self._seqs[start:end] = [row[0] for row in rows]
        codes = self._session_codes
        self._sessions[start:end] = [codes.setdefault(row[2], len(codes)) for row in rows]
        self._private[start:end] = [bool(row[3]) for row in rows]

    def closest(
        self, question: np.ndarray, limit: int, *, exclude_session: str | None, private_too: bool
    ) -> list[tuple[int, float]]:
        """The seqs of the `limit` vectors closest to the unit `question`, with their
        cosine, best first; the session left out, and private models' unless
        `private_too`."""
        if not self._count or limit <= 0:
            return []
        # A ufunc, not BLAS: OpenBLAS's threads, woken for each product, took 16-24 ms
        # instead of 0.1 now and then on a busy machine; this is single-threaded and steady.
        cosines = np.vecdot(self._matrix[: self._count], question)
        left_out = self._session_codes.get(exclude_session) if exclude_session else None
        if left_out is not None:
            cosines[self._sessions[: self._count] == left_out] = -np.inf
        if not private_too:
            cosines[self._private[: self._count]] = -np.inf
        if limit < self._count:
            best = np.argpartition(-cosines, limit - 1)[:limit]
        else:
            best = np.arange(self._count)
        best = best[np.argsort(-cosines[best], kind="stable")]
        return [
            (int(self._seqs[row]), float(cosines[row])) for row in best if cosines[row] > -np.inf
        ]

    def _reserve(self, rows: int) -> None:
        if rows <= len(self._seqs):
            return
        size = max(rows + HEADROOM, int(len(self._seqs) * GROWTH))
        self._matrix = _grown(self._matrix, size)
        self._seqs = _grown(self._seqs, size)
        self._sessions = _grown(self._sessions, size)
        self._private = _grown(self._private, size)


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    bigger = np.empty((size, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


class VectorCache:
    """The ScopeVectors of the projects searched most recently, within `max_bytes`;
    safe to use from several threads (each ScopeVectors from one at a time)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.loads = 0  # ScopeVectors put in: how often a project's vectors were read whole
        self._scopes: OrderedDict[ScopeKey, ScopeVectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: ScopeKey) -> ScopeVectors | None:
        with self._lock:
            found = self._scopes.get(key)
            if found is not None:
                self._scopes.move_to_end(key)
            return found

    def put(self, key: ScopeKey, scope: ScopeVectors) -> None:
        """`scope`, in place of the one held for `key`; the least recently searched
        others dropped while the whole is over budget."""
        with self._lock:
            self.loads += 1
            self._scopes[key] = scope
            self._scopes.move_to_end(key)
            total = sum(held.nbytes for held in self._scopes.values())
            while total > self.max_bytes and len(self._scopes) > 1:
                _, dropped = self._scopes.popitem(last=False)
                total -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._scopes.clear()
