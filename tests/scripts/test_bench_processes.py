"""The benches' proxies serve the benches' requests (not refused before the upstream), and
the benches read their counters."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from memory_proxy.config import load_settings
from memory_proxy.identity.model_check import ModelCheck
from scripts.bench_load import chat_body
from scripts.bench_processes import proxy_config, proxy_counters
from tests.support import serve


def test_the_model_the_benches_ask_for_is_not_refused(tmp_path: Path) -> None:
    settings = load_settings(proxy_config(tmp_path, "case", {}))
    ModelCheck(settings.litellm).check(json.loads(chat_body("hi")))  # raises a Refusal


def test_the_counters_are_summed_over_labels_and_store_failures_kept_by_operation() -> None:
    """What the benches print: totals, and the store's failures split by operation (a
    PostgreSQL restart refuses loads and appends alike: README's restart table)."""
    metrics = (
        b'memory_proxy_requests_total{status="200"} 7.0\n'
        b'memory_proxy_requests_total{status="502"} 1.0\n'
        b'memory_proxy_memory_store_errors_total{operation="load"} 3.0\n'
        b'memory_proxy_memory_store_errors_total{operation="append"} 2.0\n'
        b'memory_proxy_memory_store_errors_total{operation="purge"} 0.0\n'
        b"memory_proxy_memories_dropped_total 0.0\n"
    )
    app = Starlette(routes=[Route("/metrics", lambda _: Response(metrics))])
    with serve(app) as url:
        counters = proxy_counters(url)
    assert counters == {
        "requests": 8,
        "memory_store_errors": 5,
        "memory_store_errors load": 3,
        "memory_store_errors append": 2,
    }
