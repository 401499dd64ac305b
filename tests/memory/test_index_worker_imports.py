"""The index process (memory/index_worker.py) starts with every proxy's first exchange:
each module it imports is CPU spent on each start (about 0.2 s of CPU when it imported
the config package, YAML and Starlette, several times what it does for a test's exchange).
It imports what makes and writes a memory, and nothing of the HTTP side or the config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from memory_proxy.memory import index_process

ROOT = str(Path(__file__).resolve().parents[2])
# Whole packages the process has no use for, and what the proxy's other layers import.
NOT_IMPORTED = (
    "starlette",
    "uvicorn",
    "httpx",
    "httpcore",
    "aiohttp",
    "anyio",
    "yaml",
    "prometheus_client",
    "psycopg",
    "redis",
    "numpy",
    "memory_proxy.config",
    "memory_proxy.app",
    "memory_proxy.api",
    "memory_proxy.pipeline",
    "memory_proxy.forwarding",
    "memory_proxy.identity",
    "memory_proxy.accounting",
)


def test_the_index_process_imports_nothing_of_the_http_side_or_the_config() -> None:
    """Imported in a fresh interpreter, from this checkout, as the proxy starts it."""
    script = (
        f"import json, sys, {index_process.WORKER_MODULE}; print(json.dumps(list(sys.modules)))"
    )
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
    ran = subprocess.run(
        [sys.executable, "-P", "-c", script],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
    )
    imported = json.loads(ran.stdout)
    assert index_process.WORKER_MODULE in imported
    unwanted = sorted(
        name
        for name in imported
        if any(name == package or name.startswith(f"{package}.") for package in NOT_IMPORTED)
    )
    assert unwanted == []
