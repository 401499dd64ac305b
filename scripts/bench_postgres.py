"""Session memory on PostgreSQL against nginx, beside SQLite's, and PostgreSQL restarted
under load: the benchmarks of issue 23's "Done when".

    PYTHONPATH=. .venv/bin/python -m scripts.bench_postgres [--parts sessions,restart]

`sessions`: scripts/bench's "session memory" case (10,000 sessions of three exchanges
seeded, one proxy worker, nginx upstream, wrk at 1 and 50 clients, rounds interleaved)
with its store in SQLite and in a PostgreSQL 15 of its own (tests/postgres_support.py:
Debian's postgresql-15 in a temporary directory, run as the unprivileged `postgres` user,
fsync and synchronous_commit off as for tests; `--durable`: PostgreSQL's defaults),
beside direct nginx.
`restart`: the PostgreSQL case under 50 clients for 60 s, PostgreSQL stopped (`-m fast`)
after 20 s and started again 5 s later. It prints the client requests that failed, the
proxy's counters from /metrics, and the exchanges stored against the requests served once
the proxy stopped (its queued writes written first): a missing one not counted is lost
silently. Load averages are printed with the figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg

from scripts.bench import WARM_UP_SECONDS, Case, Server, _stop, interleaved, memory_proxy
from scripts.bench_load import failed_requests, run_wrk, write_wrk_script, wrk_round
from scripts.bench_memory import SEEDED, SESSIONS, MemoryCase, memory_cases
from scripts.bench_nginx import nginx_upstream
from scripts.bench_processes import proxy_counters, rss_mb
from scripts.bench_report import Results, report_posts
from tests.postgres_support import BINARIES, FAST, LOOPBACK, PostgresServer

CLIENTS = 50
MESSAGES_PER_EXCHANGE = 2  # the question and the answer, appended to the session


def session_case(sessions: int = SESSIONS) -> MemoryCase:
    """scripts/bench's session memory case (SQLite)."""
    case = next(case for case in memory_cases() if case.name == "session memory")
    return dataclasses.replace(case, sessions=sessions)


def postgres_case(url: str, sessions: int = SESSIONS) -> MemoryCase:
    """The same case with its sessions in the PostgreSQL database at `url`."""
    case = session_case(sessions)
    memory = {**case.config["memory"], "store": "postgres", "postgres_url": url}
    config = {**case.config, "memory": memory}
    return dataclasses.replace(case, name="session memory on PostgreSQL", config=config)


@contextmanager
def postgres_server(options: str) -> Iterator[PostgresServer]:
    server = PostgresServer(options)
    try:
        yield server
    finally:
        server.close()


def load_average() -> str:
    return "load average " + ", ".join(f"{n:.2f}" for n in os.getloadavg())


def sessions_part(
    directory: Path,
    rounds: int,
    seconds: int,
    sessions: int = SESSIONS,
    options: str = FAST,
    warm_up_seconds: int = WARM_UP_SECONDS,
) -> Results:
    """Direct nginx, session memory on SQLite and on PostgreSQL, at 1 and 50 clients,
    each warmed up first (none with `warm_up_seconds=0`: the tests count, not time)."""
    results = Results()
    directory.mkdir()
    with ExitStack() as servers:
        nginx_url, nginx = servers.enter_context(nginx_upstream(directory / "nginx"))
        direct = Server("direct nginx", nginx_url, nginx.pid, directory / "direct.lua")
        write_wrk_script(direct.script)
        database = servers.enter_context(postgres_server(options))
        cases = [session_case(sessions), postgres_case(database.schema_url(), sessions)]
        proxies = [memory_proxy(servers, directory, case, nginx_url, results) for case in cases]
        results.idle_rss_mb = {proxy.name: rss_mb(proxy.pid) for proxy in proxies}
        measured = [
            Case(server, clients) for clients in (1, CLIENTS) for server in (direct, *proxies)
        ]
        for case in measured if warm_up_seconds else ():
            wrk_round(case.server.url, CLIENTS, warm_up_seconds, case.server.script)
        print(f"before the rounds: {load_average()}", file=sys.stderr)
        results.post = interleaved(measured, rounds, seconds)
        print(f"after the rounds: {load_average()}", file=sys.stderr)
        for proxy in proxies:
            results.counters[proxy.name] = proxy_counters(proxy.url)
    return results


@dataclasses.dataclass(frozen=True)
class Restart:
    """What a PostgreSQL restart under load cost."""

    requests: int  # wrk's
    failed: int  # wrk's: error answers and socket errors
    counters: dict[str, float]  # the proxy's, from /metrics
    served: int  # the proxy's requests counter
    stored: int  # exchanges in the sessions after the proxy stopped, beyond the seeded


def restart_part(
    directory: Path,
    seconds: int = 60,
    stop_after: float = 20,
    down: float = 5,
    sessions: int = SESSIONS,
    options: str = FAST,
) -> Restart:
    """The PostgreSQL case under load for `seconds`, PostgreSQL stopped after
    `stop_after` and started `down` seconds later (a schedule, not a synchronisation)."""
    directory.mkdir()
    with ExitStack() as servers:
        nginx_url, _ = servers.enter_context(nginx_upstream(directory / "nginx"))
        database = servers.enter_context(postgres_server(options))
        url = database.schema_url()
        with ExitStack() as proxy_stack:
            proxy = memory_proxy(
                proxy_stack, directory, postgres_case(url, sessions), nginx_url, Results()
            )
            with ThreadPoolExecutor(1) as pool:
                load = pool.submit(run_wrk, proxy.url, CLIENTS, seconds, proxy.script)
                time.sleep(stop_after)
                database.stop()
                print(f"PostgreSQL stopped: {load_average()}", file=sys.stderr)
                time.sleep(down)
                database.start()
                print(f"PostgreSQL started: {load_average()}", file=sys.stderr)
                output = load.result()
            counters = proxy_counters(proxy.url)
        with psycopg.connect(url) as db:
            row = db.execute("SELECT count(*) FROM messages").fetchone()
    assert row is not None
    stored = (row[0] - sessions * len(SEEDED)) // MESSAGES_PER_EXCHANGE
    requests = re.search(r"(\d+) requests in", output)
    if requests is None:
        raise RuntimeError(f"wrk measured nothing against {proxy.url}:\n{output}")
    served = int(counters.pop("requests", 0))
    return Restart(int(requests.group(1)), failed_requests(output), counters, served, stored)


def report_restart(restart: Restart) -> None:
    missing = restart.served - restart.stored
    counted = ", ".join(f"{name} {count:,.0f}" for name, count in restart.counters.items())
    silent = missing - restart.counters.get("memory_store_errors", 0)
    print(
        f"\nPostgreSQL restarted under {CLIENTS} clients: {restart.requests:,} requests, "
        f"{restart.failed:,} failed (target 0: {'met' if restart.failed == 0 else 'MISSED'})\n"
        f"  the proxy served {restart.served:,}; exchanges stored {restart.stored:,}, "
        f"missing {missing:,}; counted: {counted or 'nothing'}\n"
        f"  missing beyond the store errors counted (lost silently): {max(silent, 0):,.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="sessions,restart", help="sessions, restart")
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--restart-seconds", type=int, default=60, help="the restart's load")
    parser.add_argument(
        "--durable", action="store_true", help="PostgreSQL's default settings (fsync on)"
    )
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    if unknown := set(parts) - {"sessions", "restart"}:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    if not (BINARIES / "pg_ctl").exists():
        sys.exit(f"PostgreSQL 15 is not installed ({BINARIES})")
    signal.signal(signal.SIGTERM, _stop)
    options = LOOPBACK if args.durable else FAST
    with tempfile.TemporaryDirectory(prefix="bench-postgres-") as temporary:
        directory = Path(temporary)
        if "sessions" in parts:
            print(f"sessions, start: {load_average()}")
            report_posts(
                sessions_part(directory / "sessions", args.rounds, args.seconds, options=options)
            )
            print(f"sessions, end: {load_average()}")
        if "restart" in parts:
            print(f"restart, start: {load_average()}")
            report_restart(
                restart_part(directory / "restart", args.restart_seconds, options=options)
            )
            print(f"restart, end: {load_average()}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every server the bench started is stopped")
