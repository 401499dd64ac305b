"""Room in the SQLite file: what forgetting leaves behind, how much of the file is used,
and giving freed pages back to the disk (README, "The SQLite file").

- Erasing. Every connection has `secure_delete` on, so a deleted row's bytes are
  overwritten with zeros, in its page and in pages freed whole. The page images from
  before stay in the write-ahead log (the -wal file, reused but never cleared), so after a
  forget `empty_log` checkpoints every frame into the file and truncates the log to zero
  bytes. What can hold that back: another connection reading an older snapshot (an open
  read transaction: a long export, a sqlite3 shell inside BEGIN) or writing (a big
  transaction: the index's optimize, an import). The checkpoint waits for them, up to
  `wait` seconds, and otherwise says so; the caller tries again later.
- Size. The bytes in use are (page_count - freelist_count) x page_size: the file as it
  would be with every free page given back; the -wal is not counted (it is emptied after
  each forget, and kept under JOURNAL_SIZE_LIMIT otherwise).
- Shrinking. With auto_vacuum=INCREMENTAL, `release_free_pages` moves pages so that the
  free ones are at the end and truncates them off. A new file gets the setting before its
  first table (SQLiteFile); a file from before needs one full VACUUM to take it, done at
  open while the file is at most VACUUM_AT_OPEN_BYTES (or by `memory-proxy memories
  compact`); until then freed pages are reused, not returned.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

logger = logging.getLogger("memory_proxy.stores")

INCREMENTAL = 2  # PRAGMA auto_vacuum's value for INCREMENTAL
JOURNAL_SIZE_LIMIT = 4 * 2**20  # the -wal is truncated to this after each checkpoint
VACUUM_AT_OPEN_BYTES = 512 * 2**20
DEFAULT_BUSY_SECONDS = 5.0  # sqlite3.connect's default timeout, restored after a wait
_told_to_compact: set[Path] = set()  # said once per file and process (each store opens it)


def used_bytes(db: sqlite3.Connection) -> int:
    """The bytes of the file's pages in use (free pages are not counted)."""
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    (free,) = db.execute("PRAGMA freelist_count").fetchone()
    (size,) = db.execute("PRAGMA page_size").fetchone()
    return int((pages - free) * size)


def release_free_pages(db: sqlite3.Connection) -> None:
    """Gives every free page back to the disk (nothing without auto_vacuum=INCREMENTAL).
    Outside a transaction: run as a script, stepped to its end (it frees one page per
    step, and `execute` steps once)."""
    db.executescript("PRAGMA incremental_vacuum")


def empty_log(db: sqlite3.Connection, wait: float = DEFAULT_BUSY_SECONDS) -> bool:
    """Checkpoints the whole -wal into the file and truncates it to zero bytes, waiting up
    to `wait` seconds for other connections; False when one held it back."""
    db.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
    try:
        (blocked, _, _) = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.execute(f"PRAGMA busy_timeout={int(DEFAULT_BUSY_SECONDS * 1000)}")
    return not blocked


def compact(path: Path) -> tuple[int, int]:
    """The whole file rewritten (VACUUM), switched to incremental vacuum if it was not:
    its size on disk before and after. Waits for other connections as any write does."""
    before = path.stat().st_size
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
        db.execute("VACUUM")
        empty_log(db)
    finally:
        db.close()
    return before, path.stat().st_size


def allow_shrinking(db: sqlite3.Connection, path: Path) -> bool:
    """Switches a file made before incremental vacuum to it, with one VACUUM, when it is
    at most VACUUM_AT_OPEN_BYTES; says why not otherwise. True once the file can shrink."""
    (mode,) = db.execute("PRAGMA auto_vacuum").fetchone()
    if mode == INCREMENTAL:
        return True
    size = used_bytes(db)
    if size > VACUUM_AT_OPEN_BYTES:
        if path in _told_to_compact:
            return False
        _told_to_compact.add(path)
        logger.warning(
            "%s cannot shrink yet (%.0f MB, made before incremental vacuum): stop the proxy "
            "and run `memory-proxy memories compact` once; until then pages freed by "
            "forgetting and pruning are reused, not given back",
            path,
            size / 2**20,
        )
        return False
    started = time.monotonic()
    try:
        db.execute(f"PRAGMA auto_vacuum={INCREMENTAL}")
        db.execute("VACUUM")
    except sqlite3.OperationalError as exc:  # another process is using the file
        logger.info("%s: incremental vacuum left for the next start (%s)", path, exc)
        return False
    empty_log(db)
    logger.info(
        "%s switched to incremental vacuum (%.1f MB, once, in %.1f s)",
        path,
        used_bytes(db) / 2**20,
        time.monotonic() - started,
    )
    return True
