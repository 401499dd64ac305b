"""scripts/bench_postgres_cost.py counts what it says, for this checkout and another
commit's code (here HEAD's, seeded by its own code in PostgreSQL): statements sent and
run inside functions, commits, the server's and the proxy's CPU per request (a small
store and one short round each here; the bench seeds 10,000 sessions)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.bench_nginx import nginx_binary
from scripts.bench_postgres_cost import compare
from tests.postgres_support import pg_ctl

pytestmark = pytest.mark.skipif(
    nginx_binary() is None or shutil.which("wrk") is None, reason="nginx or wrk is not installed"
)


def test_each_proxy_is_measured_per_request_on_one_server(tmp_path: Path) -> None:
    pg_ctl()  # skipped without PostgreSQL 15
    costs = compare(tmp_path, "HEAD", rounds=1, seconds=1, sessions=20)
    assert set(costs) == {"session memory on PostgreSQL", "session memory on PostgreSQL @HEAD"}
    for (cost,) in costs.values():
        assert cost.requests_per_second > 0
        assert cost.proxy_cpu_ms > cost.proxy_loop_cpu_ms > 0 and cost.server_cpu_ms > 0
        assert 0 < cost.sent < 2  # the loads and appends of several requests together
        assert cost.nested >= 2  # each append's upsert and INSERT, inside the function
        assert 0 < cost.commits < 1 and cost.wal_bytes > 0
