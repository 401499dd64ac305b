"""The PostgreSQL session store's loads and appends of many calls at once, on its own
thread with its own connection (postgres_sessions.py queues them: batched_calls.py).

Under load the event loop's share of a round trip through psycopg's async connection and
its pool (checkout, return, the waits) cost as much as the rest of the memory path; here
a batch of calls costs one hop to the thread, and its histories one statement, its
appends another. Histories asked for together are read by one query (those asked for
before an append of their own session, before it, as on SQLite: sqlite_session_rows.py);
appends made together are one statement calling `memory_proxy_append` once per append,
in order, in one implicit transaction. Each call still ends as it would alone: a load
sees every append made before it and none made after; when the appends' statement fails,
each is tried alone, so that a failing one fails alone.

A broken connection (PostgreSQL restarted) is closed and the next batch opens another;
its histories are read once more at once, its appends fail (counted by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from psycopg import sql

from memory_proxy.records.messages import Message
from memory_proxy.stores.packed_text import pack_object_unless_short, unpack_object
from memory_proxy.stores.postgres_database import CONNECT_TIMEOUT_SECONDS
from memory_proxy.stores.session_calls import Append, Load, SessionCall

# Many sessions' messages in one statement, each row named by its session's place.
_LOAD_MANY = """
SELECT w.n, m.message
FROM unnest(%b::text[], %b::text[]) WITH ORDINALITY AS w (user_id, session_id, n)
JOIN sessions s ON s.user_id = w.user_id AND s.session_id = w.session_id
JOIN messages m ON m.user_id = s.user_id AND m.session_id = s.session_id
WHERE s.updated > %b ORDER BY w.n, m.id
"""
# Each append's call of the migration's function, in the order of the arrays (a function
# scan returns its rows in order), its messages a slice of one array of all of them.
_APPEND_MANY = """
SELECT memory_proxy_append(a.user_id, a.session_id, %(now)b, %(oldest_live)b,
    (%(messages)b::bytea[])[a.first:a.last], %(max)b::integer)
FROM unnest(%(users)b::text[], %(sessions)b::text[], %(firsts)b::int[], %(lasts)b::int[])
    AS a (user_id, session_id, first, last)
"""


class SessionRows:
    """One connection to `url` (opened at first use, each statement limited to
    `statement_timeout_ms`) and the batches run on it, on one thread."""

    def __init__(
        self,
        url: str,
        statement_timeout_ms: int,
        now: Callable[[], float],
        ttl: float,
        max_messages: int | None,
    ) -> None:
        self._url, self._timeout_ms = url, statement_timeout_ms
        self._now, self._ttl, self._max_messages = now, ttl, max_messages
        self._db: psycopg.Connection[Any] | None = None

    def run(self, calls: list[SessionCall]) -> list[Any]:
        """Each call's outcome, in order: a history, a count of dropped messages, or a
        failure. Loads and appends are gathered, and run (the loads' statement, then the
        appends', or the other way round) when a call must come after both."""
        outcomes: list[Any] = [None] * len(calls)
        loads: dict[int, Load] = {}
        appends: dict[int, Append] = {}
        read: set[tuple[str, str]] = set()  # the sessions of the loads gathered
        written: set[tuple[str, str]] = set()  # and of the appends
        first: type[Load] | type[Append] | None = None  # the kind that must go first
        for place, call in enumerate(calls):
            kind, session = type(call), (call.user_id, call.session_id)
            if session in (written if kind is Load else read):
                if first is kind:  # it must come after the others, which after its kind
                    self._flush(loads, appends, first is Load, outcomes)
                    read.clear()
                    written.clear()
                    first = None
                else:
                    first = Append if kind is Load else Load
            if isinstance(call, Load):
                loads[place] = call
                read.add(session)
            else:
                appends[place] = call
                written.add(session)
        self._flush(loads, appends, first is not Append, outcomes)
        return outcomes

    def _flush(
        self, loads: dict[int, Load], appends: dict[int, Append], loads_first: bool, out: list[Any]
    ) -> None:
        for read in (True, False) if loads_first else (False, True):
            if read and loads:
                for place, outcome in zip(loads, self._read(list(loads.values())), strict=True):
                    out[place] = outcome
            elif not read and appends:
                for place, dropped in zip(
                    appends, self._write(list(appends.values())), strict=True
                ):
                    out[place] = dropped
        loads.clear()
        appends.clear()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._db is None or self._db.closed:
            db = psycopg.connect(
                self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
            db.execute(sql.SQL("SET statement_timeout = {}").format(self._timeout_ms))
            self._db = db
        return self._db

    def _execute(self, query: str, params: tuple[Any, ...] | dict[str, Any]) -> list[Any]:
        db = self._connection()
        try:
            return db.execute(query, params, binary=True).fetchall()
        except psycopg.Error:
            if db.closed:  # broken (the server restarted): the next statement opens another
                self._db = None
            raise

    def _read(self, loads: list[Load]) -> list[list[Message] | Exception]:
        """Each session's messages, oldest first (none for an expired one); read once
        more on a new connection when the first was broken; a history whose stored text
        cannot be read fails alone."""
        params = (
            [load.user_id for load in loads],
            [load.session_id for load in loads],
            self._now() - self._ttl,
        )
        try:
            try:
                rows = self._execute(_LOAD_MANY, params)
            except psycopg.OperationalError:
                if self._db is not None:
                    raise  # not a lost connection (a statement timeout)
                rows = self._execute(_LOAD_MANY, params)
        except Exception as exc:
            return [exc] * len(loads)
        histories: list[list[Message] | Exception] = [[] for _ in loads]
        for place, stored in rows:
            history = histories[place - 1]
            if isinstance(history, list):
                try:
                    history.append(orjson.loads(unpack_object(stored)))
                except Exception as exc:
                    histories[place - 1] = exc
        return histories

    def _write(self, appends: list[Append]) -> list[int | Exception]:
        """The appends in one statement; when it fails for what was sent (not for the
        connection or the server's time), each alone."""
        packed = [one.packed(pack_object_unless_short) for one in appends]
        ready = [
            (one, texts)
            for one, texts in zip(appends, packed, strict=True)
            if isinstance(texts, list)
        ]
        try:
            dropped = iter(self._append(ready))
        except psycopg.Error as exc:
            if isinstance(exc, psycopg.OperationalError) or len(ready) == 1:
                return [exc if isinstance(texts, list) else texts for texts in packed]
            return [self._alone(one, texts) for one, texts in zip(appends, packed, strict=True)]
        return [next(dropped) if isinstance(texts, list) else texts for texts in packed]

    def _alone(self, one: Append, texts: list[bytes] | Exception) -> int | Exception:
        if isinstance(texts, Exception):
            return texts
        try:
            return self._append([(one, texts)])[0]
        except psycopg.Error as exc:
            return exc

    def _append(self, ready: list[tuple[Append, list[bytes]]]) -> list[int]:
        if not ready:
            return []
        messages: list[bytes] = []
        firsts, lasts = [], []
        for _, texts in ready:
            firsts.append(len(messages) + 1)
            messages += texts
            lasts.append(len(messages))
        now = self._now()
        params = {
            "now": now,
            "oldest_live": now - self._ttl,
            "messages": messages,
            "max": self._max_messages,
            "users": [one.user_id for one, _ in ready],
            "sessions": [one.session_id for one, _ in ready],
            "firsts": firsts,
            "lasts": lasts,
        }
        return [int(row[0] or 0) for row in self._execute(_APPEND_MANY, params)]
