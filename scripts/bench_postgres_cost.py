"""Where a session-memory request's time goes on PostgreSQL: the proxy's CPU, the server's
CPU, its statements and commits, its write-ahead log, per request, for this checkout and
(`--compare REV`) another commit's code, their rounds alternated on one server.

    PYTHONPATH=. .venv/bin/python -m scripts.bench_postgres_cost --compare 22facec

scripts/bench_postgres's "session memory on PostgreSQL" case (10,000 sessions of three
exchanges, one proxy worker, nginx upstream, 50 clients), each proxy on a schema of its
own, seeded by its own code. PostgreSQL shares the machine's cores with the proxy, wrk
and nginx, so its CPU per request costs as much as the proxy's; both are counted rather
than requests a second, which move with whatever else the machine runs. The server runs
pg_stat_statements (shipped with PostgreSQL): statements sent (each one round trip) and
those run inside functions are counted apart. The server's counters (commits, WAL) reach
its statistics when its backends go idle, within a second: each reading waits for that.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg

from scripts.bench import Server, checkout_of, compared_proxy, memory_proxy
from scripts.bench_load import wrk_round
from scripts.bench_memory import SESSIONS
from scripts.bench_nginx import nginx_upstream
from scripts.bench_postgres import CLIENTS, load_average, postgres_case, postgres_server
from scripts.bench_processes import cpu_seconds
from scripts.bench_report import Results
from tests.postgres_support import FAST, PostgresServer

STATEMENTS = "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
# Each proxy's load before its rounds, at most: thousands of requests a second, every
# connection opened and its statements prepared long before it ends (as long as a round
# when the rounds are shorter: the test's, of 1 s).
WARM_UP_SECONDS = 2
STATS_FLUSH_SECONDS = 1.5  # a backend idle for a second has flushed its statistics
_COUNTERS = """
SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
    (SELECT wal_bytes FROM pg_stat_wal),
    (SELECT coalesce(sum(calls) FILTER (WHERE toplevel), 0) FROM pg_stat_statements),
    (SELECT coalesce(sum(calls) FILTER (WHERE NOT toplevel), 0) FROM pg_stat_statements)
"""


@dataclass(frozen=True)
class Cost:
    """One round of one proxy, per request (CPU in ms)."""

    requests_per_second: float
    proxy_cpu_ms: float
    proxy_loop_cpu_ms: float  # of it, the main thread's (the event loop); the rest threads'
    server_cpu_ms: float
    sent: float  # statements sent by the proxy: round trips
    nested: float  # statements run inside functions
    commits: float
    wal_bytes: float


def server_cpu_seconds(server: PostgresServer) -> float:
    """The postmaster's and every backend's and helper's CPU time so far (a backend that
    ended took its time with it: the proxy's connections stay open)."""
    pid = int((Path(server.data_directory) / "postmaster.pid").read_text().split()[0])
    return cpu_seconds(pid)


def loop_cpu_seconds(pid: int) -> float:
    """The CPU time of a process's main thread (its thread id is the process's)."""
    main = next(t for t in psutil.Process(pid).threads() if t.id == pid)
    return main.user_time + main.system_time


def counters(db: psycopg.Connection[tuple[int, ...]]) -> tuple[int, ...]:
    row = db.execute(_COUNTERS).fetchone()
    assert row is not None
    return tuple(int(value) for value in row)


def measured_round(
    proxy: Server, server: PostgresServer, db: psycopg.Connection[tuple[int, ...]], seconds: int
) -> Cost:
    time.sleep(STATS_FLUSH_SECONDS)
    db.execute("SELECT pg_stat_statements_reset()")
    before, proxy_cpu, server_cpu = counters(db), cpu_seconds(proxy.pid), server_cpu_seconds(server)
    loop_cpu = loop_cpu_seconds(proxy.pid)
    figures = wrk_round(proxy.url, CLIENTS, seconds, proxy.script)
    proxy_cpu = cpu_seconds(proxy.pid) - proxy_cpu
    loop_cpu = loop_cpu_seconds(proxy.pid) - loop_cpu
    time.sleep(STATS_FLUSH_SECONDS)
    server_cpu = server_cpu_seconds(server) - server_cpu
    commits, wal, sent, nested = (a - b for a, b in zip(counters(db), before, strict=True))
    requests = figures["requests"]
    return Cost(
        figures["rps"],
        proxy_cpu * 1000 / requests,
        loop_cpu * 1000 / requests,
        server_cpu * 1000 / requests,
        (sent - 1) / requests,  # less the reading of the counters
        nested / requests,
        (commits - 1) / requests,  # less the reset's
        wal / requests,
    )


def compare(
    directory: Path, older: str | None, rounds: int, seconds: int, sessions: int = SESSIONS
) -> dict[str, list[Cost]]:
    with ExitStack() as servers:
        nginx_url, _ = servers.enter_context(nginx_upstream(directory / "nginx"))
        server = servers.enter_context(postgres_server(f"{FAST} {STATEMENTS}"))
        ours = memory_proxy(
            servers, directory, postgres_case(server.schema_url(), sessions), nginx_url, Results()
        )
        proxies = [ours]
        if older is not None:
            case = postgres_case(server.schema_url(), sessions)
            checkout = checkout_of(older, directory)
            proxies.append(compared_proxy(servers, directory, case, nginx_url, ours, checkout))
        db = servers.enter_context(psycopg.connect(server.url, autocommit=True))
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        for proxy in proxies:  # warmed up: connections opened, statements prepared
            wrk_round(proxy.url, CLIENTS, min(WARM_UP_SECONDS, seconds), proxy.script)
        costs: dict[str, list[Cost]] = {proxy.name: [] for proxy in proxies}
        for number in range(rounds):
            print(f"round {number + 1} of {rounds}: {load_average()}", file=sys.stderr)
            for proxy in proxies if number % 2 == 0 else reversed(proxies):
                costs[proxy.name].append(measured_round(proxy, server, db, seconds))
    return costs


def report(costs: dict[str, list[Cost]]) -> None:
    print(f"session memory on PostgreSQL, {SESSIONS:,} sessions, {CLIENTS} clients, per request:")
    for name, rounds in costs.items():
        print(f"  {name}")
        for field in Cost.__dataclass_fields__:
            values = [getattr(cost, field) for cost in rounds]
            print(
                f"    {field:20} median {statistics.median(values):10.3f}  "
                f"[{min(values):.3f}–{max(values):.3f}]  "
                + " ".join(f"{value:.3f}" for value in values)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compare", help="a commit whose proxy runs in alternate rounds")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    print(f"start: {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench-postgres-cost-") as temporary:
        report(compare(Path(temporary), args.compare, args.rounds, args.seconds))
    print(f"end: {load_average()}")


if __name__ == "__main__":
    main()
