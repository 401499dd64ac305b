"""Many rows written in a few SQLite statements rather than one per row.

The background writers store batches of up to 2,000 records. Row by row (an INSERT per
memory, its full-text row, an upsert per term; `executemany` for usage records) a batch
of 2,000 short memories was 8,010 statements and 2,000 usage records 2,211, each paying
sqlite3's Python side and a GIL release and re-take around its step, which the event
loop's thread competes for. (callgrind, scripts/bench_hop's no-session case: the memory
writer's thread ran 256k instructions per request row by row, 105k now.)

Here the rows of a batch are bound to multi-row `INSERT ... VALUES (...), (...)`
statements of 256, 64, 16, 4 or 1 rows (a batch of 2,000 is 11 statements): a few shapes,
each parsed once and then taken from sqlite3's statement cache, where a statement sized
to each batch would be parsed anew every time (~3 us a row, more than executemany's
whole cost). Values are bound as they are (BLOBs, exact floats, texts holding a NUL,
which SQLite's JSON functions cut short), not converted through JSON; where values are
plain words and numbers, `json_each` over one parameter does the same
(sqlite_term_counts.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

MOST_ROWS = 256  # in one statement; fewer when SQLite binds fewer variables
_SIZES = (256, 64, 16, 4, 1)


def insert_rows(
    db: sqlite3.Connection,
    insert: str,
    rows: Sequence[Sequence[Any]],
    upsert: str = "",
) -> None:
    """`insert` ("INSERT INTO t (a, b)") of every row, `upsert` ("ON CONFLICT ...") after
    its VALUES; rows all of one length."""
    if rows:
        insert_values(db, insert, [value for row in rows for value in row], len(rows[0]), upsert)


def insert_values(
    db: sqlite3.Connection,
    insert: str,
    values: Sequence[Any],
    columns: int,
    upsert: str = "",
) -> None:
    """insert_rows of rows given one after the other in `values`, `columns` each: what a
    caller that builds a batch's values in one comprehension passes."""
    count = len(values) // columns
    most = min(MOST_ROWS, max(1, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns))
    row_marks = "(" + ", ".join("?" * columns) + ")"
    start = 0
    while start < count:
        size = next(size for size in _SIZES if size <= min(most, count - start))
        marks = ", ".join([row_marks] * size)
        db.execute(
            f"{insert} VALUES {marks} {upsert}", values[start * columns : (start + size) * columns]
        )
        start += size
