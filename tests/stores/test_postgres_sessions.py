"""PostgreSQL's `memory_proxy_append`, the function each session append calls: it keeps
a session's newest `p_max` messages and their count, begins an expired session anew, and
in the common case (a live session under its limit) does no more than it must: one new
version of the session's row, no read of its messages."""

from __future__ import annotations

from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.stores.postgres_database import migrate
from memory_proxy.stores.postgres_sessions import MIGRATIONS

_APPEND = "SELECT memory_proxy_append(%s, %s, %s, %s, %s, %s)"
_KEPT = (
    "SELECT m.message, s.message_count FROM sessions s LEFT JOIN messages m "
    "USING (user_id, session_id) WHERE s.user_id = %s AND s.session_id = %s ORDER BY m.id"
)
_sessions = iter(range(10**9))  # a session of its own for every example


def _append(
    db: psycopg.Connection[Any], session: str, now: float, messages: list[bytes], limit: int
) -> int:
    row = db.execute(_APPEND, ("alice", session, now, now - 100, messages, limit)).fetchone()
    assert row is not None
    return int(row[0])


def test_an_append_under_the_limit_updates_the_session_once_and_reads_no_message(
    postgres_url: str,
) -> None:
    migrate(postgres_url, "sessions", MIGRATIONS)
    with psycopg.connect(postgres_url, autocommit=True) as db:
        _append(db, "s", 1.0, [b"question", b"answer"], 10)
        with db.transaction():
            assert _append(db, "s", 2.0, [b"again", b"answer"], 10) == 0
            row = db.execute(
                "SELECT pg_stat_get_xact_tuples_updated('sessions'::regclass), "
                "pg_stat_get_xact_numscans('messages_by_session'::regclass)"
            ).fetchone()
        # before: the row's updates counted 3 (touched, then counted) and the session's
        # messages scanned for the oldest to drop
        assert row == (1, 0)
        kept = db.execute(_KEPT, ("alice", "s")).fetchall()
        assert kept == [(m, 4) for m in (b"question", b"answer", b"again", b"answer")]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    limit=st.integers(2, 6),
    appends=st.lists(
        st.tuples(st.integers(1, 4), st.sampled_from([1.0, 50.0, 500.0])), min_size=1, max_size=8
    ),
)
def test_a_session_keeps_its_newest_messages_and_their_count(
    postgres_url: str, limit: int, appends: list[tuple[int, float]]
) -> None:
    """`appends`: each one's number of messages and the time since the one before (the
    session expires after 100 s without one)."""
    migrate(postgres_url, "sessions", MIGRATIONS)
    session, now, written = f"p{next(_sessions)}", 0.0, 0
    model: list[bytes] = []
    with psycopg.connect(postgres_url, autocommit=True) as db:
        for size, pause in appends:
            now += pause
            if pause >= 100:  # expired: begun anew
                model = []
            messages = [f"m{written + n}".encode() for n in range(size)]
            written += size
            model += messages
            dropped = max(0, len(model) - limit)
            model = model[dropped:]
            assert _append(db, session, now, messages, limit) == dropped
            kept = db.execute(_KEPT, ("alice", session)).fetchall()
            assert kept == [(m, len(model)) for m in model]
