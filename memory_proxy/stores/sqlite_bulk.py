"""Many rows written in a few SQLite statements rather than one per row.

The background writers store batches of up to 2,000 records. Python's sqlite3 gives up the
GIL around every sqlite3_step and must take it back from the event loop's thread, CPU-bound
under load: an `executemany` of 2,000 rows is 2,000 steps, each a hand-off, and a statement
per row pays sqlite3's Python side each time as well. Here the rows of a batch are bound to
one multi-row `INSERT ... VALUES (...), (...)`, as many rows per statement as SQLite binds
variables (32,766 since 3.32: a batch of memories or usage records is one or two
statements). Values are bound as they are (BLOBs, exact floats, texts holding a NUL, which
SQLite's JSON functions cut short), not converted through JSON; where values are plain
words and numbers, `json_each` over one parameter does the same (sqlite_term_counts.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


def insert_rows(
    db: sqlite3.Connection,
    insert: str,
    rows: Sequence[Sequence[Any]],
    upsert: str = "",
) -> None:
    """`insert` ("INSERT INTO t (a, b)") of every row, `upsert` ("ON CONFLICT ...") after
    its VALUES; rows all of one length."""
    if not rows:
        return
    columns = len(rows[0])
    per_statement = max(1, db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns)
    row_marks = "(" + ", ".join("?" * columns) + ")"
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        marks = ", ".join([row_marks] * len(chunk))
        db.execute(f"{insert} VALUES {marks} {upsert}", [value for row in chunk for value in row])
