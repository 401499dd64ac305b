"""Search by meaning in one project of 10,000 and 100,000 memories (random unit vectors of
256 dimensions, as wordllama's), three ways:

- "rows read": the project's vectors read from the SQLite file at every search, then one
  matrix product in numpy (what recall did before: the statement is the one it ran);
- "held": `SQLiteVectors.nearest`, the product's path: the project's vectors held in
  memory (stores/vector_cache.py), through its search thread, the memories found read
  from the file; also its first search (which reads the project whole, off the search
  thread) and a search right after a batch of 32 vectors was added (read since);
- "sqlite-vec": sqlite-vec's vec0 table (a maintained SQLite extension), the user and
  project its partition key, the session a metadata column, a k-nearest query. Python's
  own sqlite3 here cannot load extensions (built without them), so it runs on apsw, which
  brings its own SQLite; both are bench-only (scripts/requirements-bench.txt), and the
  part is skipped when they are missing.

    .venv/bin/python -m scripts.bench_recall_vectors [--sizes 10000,100000] [--samples 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_recall import add_in_batches
from scripts.recall_dataset import record

DIMENSIONS = 256
SESSIONS = 50
USER, PROJECT = "user0", "project0"
# The statement recall ran for each question before vectors were held in memory.
ROWS_READ = """
SELECT v.seq, v.vector FROM memory_vectors v JOIN memories m ON m.seq = v.seq
WHERE m.user_id = ?1 AND m.project = ?2 AND m.session_id IS NOT ?3 AND m.private = 0
"""


def unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50 ms": round(statistics.median(ordered), 2), "p99 ms": round(p99, 2)}


async def seeded(path: Path, size: int, rng: np.random.Generator) -> SQLiteMemoryIndex:
    """One user's project of `size` memories in 50 sessions, each with its vector."""
    index = SQLiteMemoryIndex(path)
    records = [
        record(USER, PROJECT, f"s{n % SESSIONS}", f"memory {n}", 1e9 + n) for n in range(size)
    ]
    await add_in_batches(index, records)
    while batch := await index.vectors.unembedded(0, 5000):
        vectors = unit_vectors(rng, len(batch))
        await index.vectors.add([(seq, v) for (seq, _), v in zip(batch, vectors, strict=True)])
    return index


def rows_read(path: Path, questions: np.ndarray) -> list[float]:
    db = sqlite3.connect(path)  # beside the product's, as its search thread read

    def search(question: np.ndarray) -> float:
        started = time.perf_counter()
        rows = db.execute(ROWS_READ, (USER, PROJECT, "s0")).fetchall()
        matrix = np.frombuffer(b"".join(blob for _, blob in rows), dtype=np.float32)
        cosines = matrix.reshape(len(rows), -1) @ question
        np.argsort(-cosines)[:10]
        return (time.perf_counter() - started) * 1000

    try:
        return [search(question) for question in questions]
    finally:
        db.close()


async def held(
    index: SQLiteMemoryIndex, questions: np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    vectors = index.vectors

    async def search(question: np.ndarray) -> float:
        started = time.perf_counter()
        await vectors.nearest(USER, PROJECT, question.tolist(), limit=10, exclude_session="s0")
        return (time.perf_counter() - started) * 1000

    first = await search(questions[0])
    samples = [await search(question) for question in questions]
    after_adding = []
    for n, question in enumerate(questions[:10]):
        new = [record(USER, PROJECT, "new", f"new memory {n} {k}", 2e9) for k in range(32)]
        await index.add(new)
        batch = await vectors.unembedded(0, 100)
        await vectors.add(
            [(seq, v) for (seq, _), v in zip(batch, unit_vectors(rng, len(batch)), strict=True)]
        )
        after_adding.append(await search(question))
    return {
        "first search (reads the project), ms": round(first, 1),
        **summary(samples),
        "after 32 added, p50 ms": round(statistics.median(after_adding), 2),
    }


def sqlite_vec(
    directory: Path, size: int, questions: np.ndarray, rng: np.random.Generator
) -> dict[str, Any]:
    try:
        import apsw
        import sqlite_vec as extension
    except ImportError:
        return {"skipped": "pip install -r scripts/requirements-bench.txt (apsw, sqlite-vec)"}
    db = apsw.Connection(str(directory / f"sqlite-vec-{size}.sqlite3"))
    db.enable_load_extension(True)
    db.load_extension(extension.loadable_path())
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        f"CREATE VIRTUAL TABLE vectors USING vec0(scope TEXT PARTITION KEY, "
        f"embedding FLOAT[{DIMENSIONS}] distance_metric=cosine, session TEXT)"
    )
    vectors = unit_vectors(rng, size)
    started = time.perf_counter()
    with db:
        db.executemany(
            "INSERT INTO vectors (rowid, scope, embedding, session) VALUES (?, ?, ?, ?)",
            (
                (n + 1, f"{USER}/{PROJECT}", vectors[n].tobytes(), f"s{n % SESSIONS}")
                for n in range(size)
            ),
        )
    inserting = time.perf_counter() - started
    knn = (
        "SELECT rowid, distance FROM vectors WHERE embedding MATCH ?1 AND k = 10 "
        "AND scope = ?2 AND session != ?3"
    )
    samples = []
    for question in questions:
        started = time.perf_counter()
        db.execute(knn, (question.tobytes(), f"{USER}/{PROJECT}", "s0")).fetchall()
        samples.append((time.perf_counter() - started) * 1000)
    db.close()
    return {"inserting, s": round(inserting, 1), **summary(samples)}


async def measure(directory: Path, size: int, count: int) -> dict[str, Any]:
    rng = np.random.default_rng(size)
    questions = unit_vectors(rng, count)
    path = directory / f"vectors-{size}.sqlite3"
    index = await seeded(path, size, rng)
    try:
        figures: dict[str, Any] = {"memories": size}
        figures["rows read"] = summary(rows_read(path, questions))
        figures["held"] = await held(index, questions, rng)
    finally:
        await index.aclose()
    figures["sqlite-vec"] = sqlite_vec(directory, size, questions, rng)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as temporary:
        for size in (int(s) for s in args.sizes.split(",")):
            results.append(asyncio.run(measure(Path(temporary), size, args.samples)))
            print(json.dumps(results[-1]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
