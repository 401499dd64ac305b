"""scripts/bench_postgres.py measures what it says: session memory stores each exchange
in PostgreSQL, and a restart under load is seen by the proxy (its store errors counted)
and not by the clients (small stores and short runs here; the bench seeds 10,000
sessions and loads for 60 s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.bench_nginx import nginx_binary
from scripts.bench_postgres import postgres_case, restart_part, sessions_part
from tests.postgres_support import pg_ctl

pytestmark = pytest.mark.skipif(
    nginx_binary() is None or shutil.which("wrk") is None, reason="nginx or wrk is not installed"
)
SESSIONS = 20
# Enough that no session reaches memory.max_session_messages (100 exchanges) in the
# restart's 4 s, at any pace: a pruned exchange would look lost.
RESTART_SESSIONS = 400


def test_the_postgres_case_seeds_its_sessions_in_postgres(tmp_path: Path) -> None:
    settings = postgres_case("postgresql://bench@db/memory").store_settings(tmp_path / "x.sqlite3")
    assert (settings.store, settings.postgres_url) == ("postgres", "postgresql://bench@db/memory")


def test_session_memory_runs_on_sqlite_and_postgres_without_store_errors(tmp_path: Path) -> None:
    pg_ctl()  # skipped without PostgreSQL 15
    # No warm-up: it readies the figures, and the test reads only names and counters.
    results = sessions_part(
        tmp_path / "sessions", rounds=1, seconds=1, sessions=SESSIONS, warm_up_seconds=0
    )
    assert {name.rsplit(", ", 1)[0] for name in results.post} == {
        "direct nginx",
        "session memory",
        "session memory on PostgreSQL",
    }
    for counters in results.counters.values():
        assert set(counters) == {"requests"}  # nothing skipped or lost


def test_a_restart_under_load_fails_no_request_and_counts_what_memory_missed(
    tmp_path: Path,
) -> None:
    pg_ctl()
    restart = restart_part(
        tmp_path / "restart", seconds=4, stop_after=1, down=1, sessions=RESTART_SESSIONS
    )
    assert restart.requests > 0 and restart.failed == 0
    assert restart.counters.get("memory_store_errors", 0) > 0
    assert 0 < restart.stored < restart.served
    # every exchange not stored is counted: a request without memory, or a write refused
    assert restart.stored + restart.counters["memory_store_errors"] >= restart.served
