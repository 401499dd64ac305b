"""The session store's reads and writes of many calls at once, on the file's thread
(sqlite.py's SQLiteStore queues them: stores/batched_calls.py).

Histories asked for together are read by one query (those asked for before an append of
their own session, before it); appends made together are written in one transaction,
with as few statements each as the common case needs: the session's row is upserted
with its new count (the expired-session reset runs only when the upsert finds one), and
savepoints are taken per append only when something in the batch failed. Each call
still ends as it would alone: a load sees every append made before it and none made
after, a failing append leaves nothing of itself, and the others are written.

A message's JSON is packed, a short one kept plain (packed_text.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import orjson

from memory_proxy.records.messages import Message
from memory_proxy.stores.packed_text import pack_unless_short, unpack_bytes
from memory_proxy.stores.session_calls import Append, Load, SessionCall

_LOAD_ONE = (
    "SELECT m.message FROM messages m JOIN sessions s USING (user_id, session_id) "
    "WHERE m.user_id = ? AND m.session_id = ? AND s.updated > ? ORDER BY m.id"
)
# Many sessions' messages in one statement, each row named by its session's place in the
# JSON array of [user id, session id] pairs.
_LOAD_MANY = (
    "SELECT wanted.key, m.message FROM json_each(?1) wanted "
    "JOIN sessions s ON s.user_id = json_extract(wanted.value, '$[0]') "
    "AND s.session_id = json_extract(wanted.value, '$[1]') "
    "JOIN messages m ON m.user_id = s.user_id AND m.session_id = s.session_id "
    "WHERE s.updated > ?2 ORDER BY wanted.key, m.id"
)
# The session's row made, or touched and its count raised; no row changed when it had
# expired (then it is deleted and made anew). RETURNING the count would cost more (an
# ephemeral table per statement) than the DELETE of the oldest that finds nothing.
_TOUCH = (
    "INSERT INTO sessions (user_id, session_id, created, updated, message_count) "
    "VALUES (?1, ?2, ?3, ?3, ?4) ON CONFLICT DO UPDATE SET updated = excluded.updated, "
    "message_count = message_count + excluded.message_count WHERE updated > ?5"
)
_DELETE_EXPIRED = "DELETE FROM sessions WHERE user_id = ? AND session_id = ? AND updated <= ?"
_INSERT = "INSERT INTO messages (user_id, session_id, message) VALUES (?, ?, ?)"
_DROP_OLDEST = (
    "DELETE FROM messages WHERE user_id = ?1 AND session_id = ?2 AND id <= ("
    "SELECT id FROM messages WHERE user_id = ?1 AND session_id = ?2 "
    "ORDER BY id DESC LIMIT 1 OFFSET ?3)"
)
_UNCOUNT = (
    "UPDATE sessions SET message_count = message_count - ? WHERE user_id = ? AND session_id = ?"
)


def load_all(
    db: sqlite3.Connection, loads: list[Load], oldest_live: float
) -> list[list[Message] | Exception]:
    """Each session's messages, oldest first (none for an expired one); a history whose
    stored text cannot be read fails alone."""
    if len(loads) == 1:
        rows = db.execute(_LOAD_ONE, (*loads[0], oldest_live)).fetchall()
        return [[orjson.loads(unpack_bytes(row[0])) for row in rows]]
    histories: list[list[Message] | Exception] = [[] for _ in loads]
    for index, stored in db.execute(
        _LOAD_MANY, (orjson.dumps([load[:2] for load in loads]).decode(), oldest_live)
    ):
        history = histories[index]
        if isinstance(history, list):
            try:
                history.append(orjson.loads(unpack_bytes(stored)))
            except Exception as exc:
                histories[index] = exc
    return histories


class SessionRows:
    """The loads and appends of one batch, in the order they were made, on the file's
    thread. `now` is read for each append and each read; `on_expired_reset()` is told
    when an expired session's rows were deleted (their traces are erased by the next
    purge)."""

    def __init__(
        self,
        db: sqlite3.Connection,
        transaction: Callable[[], AbstractContextManager[object]],
        now: Callable[[], float],
        ttl: float,
        max_messages: int | None,
        on_expired_reset: Callable[[], None],
    ) -> None:
        self._db, self._transaction, self._now, self._ttl = db, transaction, now, ttl
        self._max_messages = max_messages
        self._on_expired_reset = on_expired_reset

    def run(self, calls: list[SessionCall]) -> list[Any]:
        """Each call's outcome: a history, a count of dropped messages, or a failure.

        The appends share one transaction, and the loads between them one query, read
        when an append of the same session comes next (a load sees every append made
        before it, and none made after). All is tried at once; when anything fails, all
        again, each append in a savepoint of its own, so that it fails alone (rare: the
        statements are few and fixed)."""
        packed = {
            i: call.packed(pack_unless_short)
            for i, call in enumerate(calls)
            if isinstance(call, Append)
        }
        if not packed:  # reads alone: a failing one fails its own loads
            return self._in_order(calls, packed, careful=True)
        try:
            with self._transaction():
                return self._in_order(calls, packed, careful=False)
        except Exception:
            pass  # rolled back: each call again on its own
        try:
            with self._transaction():
                return self._in_order(calls, packed, careful=True)
        except Exception as exc:  # no transaction (the file locked too long)
            loads = self._in_order([c for c in calls if isinstance(c, Load)], {}, careful=True)
            read = iter(loads)
            return [exc if isinstance(call, Append) else next(read) for call in calls]

    def _in_order(
        self,
        calls: list[SessionCall],
        packed: dict[int, list[bytes | str] | Exception],
        careful: bool,
    ) -> list[Any]:
        outcomes: list[Any] = [None] * len(calls)
        unread: dict[int, Load] = {}  # loads not read yet, by their place
        unread_sessions: set[tuple[str, str]] = set()
        for place, call in enumerate(calls):
            if isinstance(call, Load):
                unread[place] = call
                unread_sessions.add((call.user_id, call.session_id))
                continue
            if (call.user_id, call.session_id) in unread_sessions:
                self._read(unread, outcomes, careful)
                unread_sessions.clear()
            append = self._alone if careful else self._append
            outcomes[place] = append(call, packed[place])
        self._read(unread, outcomes, careful)
        return outcomes

    def _read(self, unread: dict[int, Load], outcomes: list[Any], careful: bool) -> None:
        if not unread:
            return
        try:
            histories = load_all(self._db, list(unread.values()), self._now() - self._ttl)
        except Exception as exc:
            if not careful:
                raise
            histories = [exc] * len(unread)
        for place, history in zip(unread, histories, strict=True):
            outcomes[place] = history
        unread.clear()

    def _alone(self, one: Append, packed: list[bytes | str] | Exception) -> int | Exception:
        self._db.execute("SAVEPOINT one_append")
        try:
            outcome = self._append(one, packed)
        except Exception as exc:
            self._db.execute("ROLLBACK TO one_append")
            outcome = exc
        self._db.execute("RELEASE one_append")
        return outcome

    def _append(self, one: Append, packed: list[bytes | str] | Exception) -> int | Exception:
        if isinstance(packed, Exception):
            return packed
        user_id, session_id, now = one.user_id, one.session_id, self._now()
        touch = (user_id, session_id, now, len(packed), now - self._ttl)
        if not self._db.execute(_TOUCH, touch).rowcount:  # expired: it starts again
            self._db.execute(_DELETE_EXPIRED, (user_id, session_id, now - self._ttl))
            self._on_expired_reset()
            self._db.execute(_TOUCH, touch)
        self._db.executemany(_INSERT, [(user_id, session_id, text) for text in packed])
        if self._max_messages is None:
            return 0
        dropped = self._db.execute(_DROP_OLDEST, (user_id, session_id, self._max_messages))
        if dropped.rowcount:
            self._db.execute(_UNCOUNT, (dropped.rowcount, user_id, session_id))
        return int(dropped.rowcount)
