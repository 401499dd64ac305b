"""The bench's recall burst measures what it says, in small (the bench sends 100 clients
for 10 s over 5,000 memories): the share of requests past the budget or skipped, the
memories dropped, and how long until an idle request is recalled again."""

from __future__ import annotations

import dataclasses
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from scripts.bench import memory_proxy
from scripts.bench_burst import burst_case, measure_burst
from scripts.bench_nginx import nginx_binary, nginx_upstream
from scripts.bench_report import Results, report_burst

pytestmark = pytest.mark.skipif(
    nginx_binary() is None or shutil.which("wrk") is None, reason="nginx or wrk is missing"
)


def test_a_small_burst_is_measured_and_recall_comes_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = dataclasses.replace(burst_case(300), sessions=20)
    with ExitStack() as servers:
        upstream, _ = servers.enter_context(nginx_upstream(tmp_path / "nginx"))
        proxy = memory_proxy(servers, tmp_path, case, upstream, Results())
        burst = measure_burst(
            proxy.url, proxy.pid, proxy.script, case.headers, list(proxy.questions[:5]), 20, 1, 30
        )
    assert burst["requests"] > 20
    assert 0 <= burst["past_budget_pct"] + burst["skipped_pct"] <= 100
    assert burst["memories_dropped"] == 0
    assert burst["recovered"] == 1 and burst["recovery_probes"] >= 1
    report_burst(burst | {"memories": 300, "memories_written": burst["requests"]})
    assert "an idle request recalled again" in capsys.readouterr().out
