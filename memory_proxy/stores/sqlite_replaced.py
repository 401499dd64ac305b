"""The SQLite file deleted (or replaced) under a running proxy: noticed, said once, and
opened anew, so that memory keeps working and what is written from then on is where the
CLI, the other workers and the next start look for it.

Unnoticed, the proxy went on with the unlinked file: answering from it, writing to it,
and losing all of it at the next start. SQLite does not object (a write to an unlinked
database succeeds; tried here with 3.40).

- Noticed by comparing the path's device and inode with those of the file opened, on the
  connection's own thread before its next piece of work, at most once a second: one
  `stat` a second per connection, not one per request (WatchedConnection).
- Said once per deleted file and process, however many connections of the file notice.
- Opened anew safely: the `-wal` and `-shm` at the path may still be the deleted
  database's (SQLite leaves them when it finds its file moved: `databaseIsUnmoved` in
  pager.c; a user may delete or replace the database file alone). A database opened with
  them would take the old database's pages for its own, or share one WAL index with the
  old connections and break ("disk I/O error"; both tried here). So before opening, they
  are removed when the database file is missing, or when they are the very files the old
  connection had (same device and inode); then SQLite makes new ones. This happens under
  a lock that keeps other threads and processes (`--workers`, the CLI) from opening the
  file at the same moment. (Removing is unlinking, never truncating: connections still
  on the old files keep them, see README "The SQLite file".)
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from memory_proxy.stores.base import StoreUnavailable

logger = logging.getLogger("memory_proxy.stores")

CHECK_INTERVAL_SECONDS = 1.0
SIDE_FILES = ("-wal", "-shm")  # SQLite's, beside the database file in WAL mode


class FileIdentity(NamedTuple):
    device: int
    inode: int


def identity(path: Path) -> FileIdentity | None:
    """The file at `path` now; None when there is none."""
    try:
        found = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return FileIdentity(found.st_dev, found.st_ino)


def side_files(path: Path) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in SIDE_FILES]


class ReplacementWatch:
    """Whether the file a connection opened is still the one at its path; made once the
    file is open (its `-wal` and `-shm` exist by then)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.opened = identity(path)
        self.side_files = {identity(side_file) for side_file in side_files(path)} - {None}
        self._next_check = time.monotonic() + CHECK_INTERVAL_SECONDS

    def due(self) -> bool:
        """Time to look again (a clock read: cheap enough for every call)."""
        return time.monotonic() >= self._next_check

    def replaced(self) -> bool:
        """Looks (a `stat`): whether the path now holds another file, or none."""
        self._next_check = time.monotonic() + CHECK_INTERVAL_SECONDS
        return identity(self.path) != self.opened

    def check_again_at_once(self) -> None:
        """The file could not be opened anew: the next call tries again."""
        self._next_check = 0.0


# Opens the database (anew, when given the watch of the file it replaces): a connection,
# and the watch of the file it opened (None for a database in memory).
Opener = Callable[["ReplacementWatch | None"], tuple[sqlite3.Connection, "ReplacementWatch | None"]]


class WatchedConnection:
    """A connection to the database at a path, used from one thread, which calls
    `current()` before its work when `due()`: the file at the path is looked at, and a
    deleted or replaced one opened anew."""

    def __init__(self, open_database: Opener) -> None:
        self._open = open_database
        self.db, self._watch = open_database(None)

    def due(self) -> bool:
        return self._watch is not None and self._watch.due()

    def current(self) -> sqlite3.Connection:
        """`db`, after opening the file anew if the one open was deleted or replaced;
        while that fails, every call fails."""
        watch = self._watch
        if watch is not None and watch.due() and watch.replaced():
            report(watch)
            try:
                db, self._watch = self._open(watch)
            except StoreUnavailable:
                watch.check_again_at_once()
                raise
            self.db, old = db, self.db
            old.close()
        return self.db

    def close(self) -> None:
        self.db.close()


_lock = threading.Lock()
_reported: set[tuple[Path, FileIdentity | None]] = set()


@contextlib.contextmanager
def opening(path: Path, replaced: ReplacementWatch | None = None) -> Iterator[None]:
    """Hold while opening the database at `path` (anew, when `replaced` is the watch of
    the file it replaces): a deleted database's `-wal` and `-shm` are removed first, and
    no other thread or process opens the file meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _lock, _directory_locked(path.parent):
        database_missing = not path.exists()
        for side_file in side_files(path):
            if database_missing or (replaced and identity(side_file) in replaced.side_files):
                side_file.unlink(missing_ok=True)
        yield


def report(watch: ReplacementWatch) -> None:
    """One warning per deleted file and process, whichever connection noticed first."""
    with _lock:
        seen = (watch.path, watch.opened)
        if seen in _reported:
            return
        _reported.add(seen)
    logger.warning(
        "%s was deleted or replaced while the proxy used it: memory goes on in the file "
        "now at that path (a new, empty one if there was none); what the old one held is "
        "gone from the proxy",
        watch.path,
    )


@contextlib.contextmanager
def _directory_locked(directory: Path) -> Iterator[None]:
    """An exclusive flock on the directory: held by one process at a time, released
    when the descriptor closes (even if the process dies)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
