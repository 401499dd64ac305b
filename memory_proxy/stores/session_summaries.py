"""The latest conversations of a project, read from the memory index: each session that
left memories, with its first and latest memory. Sessions themselves expire after an hour
(memory.ttl_seconds); their memories are what stays, so an agent can see what was worked
on before, in any client, and pick up where it was left."""

from __future__ import annotations

import sqlite3

from memory_proxy.records.memory import SessionSummary
from memory_proxy.stores.packed_text import unpack

# ?1 user, ?2 project, ?3 whether private models' memories count, ?4 how many sessions.
# The project's memories by the (user_id, project, created_at) index; a session's first
# and latest memory each by one lookup of the same index.
_LATEST = """
SELECT session_id, COUNT(*), MIN(created_at), MAX(created_at)
FROM memories
WHERE user_id = ?1 AND project = ?2 AND session_id IS NOT NULL AND (?3 OR private = 0)
GROUP BY session_id ORDER BY MAX(created_at) DESC, MAX(seq) DESC LIMIT ?4
"""
_EDGE = """
SELECT client, text FROM memories
WHERE user_id = ?1 AND project = ?2 AND session_id = ?3 AND (?4 OR private = 0)
ORDER BY created_at {order}, seq {order} LIMIT 1
"""
_FIRST = _EDGE.format(order="ASC")
_LAST = _EDGE.format(order="DESC")


def recent_sessions(
    db: sqlite3.Connection, user_id: str, project: str, limit: int, private_too: bool
) -> list[SessionSummary]:
    """On the index's thread; the most recent first."""
    summaries = []
    rows = db.execute(_LATEST, (user_id, project, private_too, limit)).fetchall()
    for session_id, count, started, last in rows:
        scope = (user_id, project, session_id, private_too)
        _, first_text = db.execute(_FIRST, scope).fetchone()
        client, last_text = db.execute(_LAST, scope).fetchone()
        summaries.append(
            SessionSummary(
                session_id,
                project,
                client,
                count,
                started,
                last,
                unpack(first_text),
                unpack(last_text),
            )
        )
    return summaries
